"""Data for the LeNet5 example: scikit-learn's bundled digits (no download) or MNIST IDX files."""
import os

import numpy as np

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _normalize(images):
    """[0, 1] images of shape (n, 32, 32) -> float32 (n, 1, 32, 32), centred on 0."""
    return ((images - 0.5) / 0.5).astype(np.float32)[:, None]


def load_digits(test_size=0.2, split_seed=0):
    """scikit-learn's 1,797 real 8x8 handwritten digits, upsampled to 32x32 (each pixel a 4x4 block),
    with a fixed stratified train/test split. Returns (x_train, y_train, x_test, y_test)."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    digits = sklearn_digits()
    images = np.kron(digits.images / 16.0, np.ones((4, 4)))
    x_train, x_test, y_train, y_test = train_test_split(
        _normalize(images), digits.target.astype(np.int32), test_size=test_size,
        stratify=digits.target, random_state=split_seed)
    return x_train, y_train, x_test, y_test


def check_mnist_dir(data_dir):
    """Raises FileNotFoundError naming the IDX files MNIST needs, if `data_dir` lacks any."""
    missing = [name for name in MNIST_FILES if not os.path.isfile(os.path.join(data_dir, name))]
    if missing:
        raise FileNotFoundError(f"--data-dir {data_dir!r} lacks the MNIST IDX files {', '.join(missing)} "
                                f"(expected all of: {', '.join(MNIST_FILES)})")


def load_mnist(data_dir, num_shards=None, shard_id=None):
    """MNIST through ``mindspore.dataset.MnistDataset``, padded from 28x28 to 32x32.
    Returns (x_train, y_train, x_test, y_test)."""
    import mindspore.dataset as ds

    check_mnist_dir(data_dir)

    def read(usage, shards, shard):
        dataset = ds.MnistDataset(data_dir, usage=usage, shuffle=False, num_shards=shards, shard_id=shard)
        images, labels = [], []
        for image, label in dataset.create_tuple_iterator(output_numpy=True):
            images.append(image[..., 0])
            labels.append(label)
        images = np.pad(np.stack(images).astype(np.float32) / 255.0, ((0, 0), (2, 2), (2, 2)))
        return _normalize(images), np.asarray(labels, dtype=np.int32)

    x_train, y_train = read("train", num_shards, shard_id)
    x_test, y_test = read("test", None, None)
    return x_train, y_train, x_test, y_test


def write_mnist_idx(data_dir, x_train, y_train, x_test, y_test):
    """Writes uint8 images (n, 28, 28) and labels as the four standard MNIST IDX files."""
    os.makedirs(data_dir, exist_ok=True)

    def write(name, array, magic):
        with open(os.path.join(data_dir, name), "wb") as f:
            f.write(np.array([magic, len(array), *array.shape[1:]], dtype=">i4").tobytes())
            f.write(array.astype(np.uint8).tobytes())
    write(MNIST_FILES[0], x_train, 2051)
    write(MNIST_FILES[1], y_train, 2049)
    write(MNIST_FILES[2], x_test, 2051)
    write(MNIST_FILES[3], y_test, 2049)
