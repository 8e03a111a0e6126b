"""LeNet5 as in MindSpore's documentation (docs/mindspore/code/lenet.py), optionally with
half-precision parameters."""
import mindspore.common.dtype as mstype
from mindspore import nn, ops

PARAM_DTYPES = {"float32": None, "float16": mstype.float16, "bfloat16": mstype.bfloat16}


class LeNet5(nn.Cell):
    """LeNet5 for 32x32 single-channel images.

    ``param_dtype="bfloat16"`` (or ``"float16"``) stores every parameter in that dtype and computes
    in float32 from them: MindSpore 2.10's CPU backend has no bfloat16 convolution or matmul
    kernels. The optimizer then updates half-precision parameters from half-precision gradients.
    """

    def __init__(self, num_class=10, num_channel=1, param_dtype="float32"):
        super().__init__()
        self.conv1 = nn.Conv2d(num_channel, 6, 5, pad_mode="valid")
        self.conv2 = nn.Conv2d(6, 16, 5, pad_mode="valid")
        self.fc1 = nn.Dense(16 * 5 * 5, 120)
        self.fc2 = nn.Dense(120, 84)
        self.fc3 = nn.Dense(84, num_class)
        self.relu = nn.ReLU()
        self.max_pool2d = nn.MaxPool2d(kernel_size=2, stride=2)
        self.flatten = nn.Flatten()
        self.half = PARAM_DTYPES[param_dtype] is not None
        if self.half:
            for param in self.trainable_params():
                param.set_dtype(PARAM_DTYPES[param_dtype])

    def construct(self, x):
        if self.half:
            return self._float32_from_half(x)
        x = self.max_pool2d(self.relu(self.conv1(x)))
        x = self.max_pool2d(self.relu(self.conv2(x)))
        x = self.flatten(x)
        x = self.relu(self.fc1(x))
        x = self.relu(self.fc2(x))
        return self.fc3(x)

    def _float32_from_half(self, x):
        """The same layers, computed in float32 from the half-precision parameters."""
        def f32(param):
            return ops.cast(param, mstype.float32)
        x = self.max_pool2d(self.relu(ops.conv2d(x, f32(self.conv1.weight))))
        x = self.max_pool2d(self.relu(ops.conv2d(x, f32(self.conv2.weight))))
        x = self.flatten(x)
        x = self.relu(ops.dense(x, f32(self.fc1.weight), f32(self.fc1.bias)))
        x = self.relu(ops.dense(x, f32(self.fc2.weight), f32(self.fc2.bias)))
        return ops.dense(x, f32(self.fc3.weight), f32(self.fc3.bias))
