"""Contract suite for OversampledDataset: every dataset kind x item type x worker setting."""

from __future__ import annotations

import pickle
from collections import Counter

import numpy as np
import pytest
import torch
from helpers import FIT, NumpyItems, make_shapes
from PIL import Image
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset, TensorDataset
from torchvision.datasets import ImageFolder
from torchvision.transforms import ToTensor

from torch_deepsmote import DeepSMOTE, OversampledDataset

COUNTS = (40, 16, 6)


class VisionLike(Dataset):
    """Like torchvision's MNIST: uint8 data, ``targets`` tensor, PIL items, a transform."""

    def __init__(self, images, labels, transform=None, target_transform=None, mode="L"):
        self.data, self.targets = images, torch.as_tensor(labels)
        self.transform, self.target_transform, self.mode = transform, target_transform, mode
        self.classes = [f"class {c}" for c in range(int(self.targets.max()) + 1)]
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        array = self.data[i][0] if self.mode == "L" else self.data[i].transpose(1, 2, 0)
        image, target = Image.fromarray(array, mode=self.mode), int(self.targets[i])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target


class Flip:
    """A deterministic, picklable transform whose effect is visible."""

    def __call__(self, image):
        return torch.flip(image, dims=[-1]) if isinstance(image, torch.Tensor) else image


def as_list(batch):
    return batch


def load_grey(path):
    return Image.open(path).convert("L")


@pytest.fixture(scope="module")
def data():
    return make_shapes(COUNTS)


def make_kind(kind, data, tmp_path_factory):
    X, y = data
    if kind == "tensor_uint8":
        return TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    if kind == "tensor_float":
        return TensorDataset(torch.from_numpy(X).float() / 255, torch.from_numpy(y))
    if kind == "pil":
        return VisionLike(X, y)
    if kind == "pil_totensor":
        return VisionLike(X, y, transform=ToTensor())
    if kind == "pil_rgb":
        return VisionLike(np.repeat(X, 3, axis=1), y, transform=ToTensor(), mode="RGB")
    if kind == "subset":
        return Subset(VisionLike(X, y, transform=ToTensor()), list(range(0, len(y), 1)))
    if kind == "concat":
        half = len(y) // 2
        return ConcatDataset(
            [
                VisionLike(X[:half], y[:half], transform=ToTensor()),
                VisionLike(X[half:], y[half:], transform=ToTensor()),
            ]
        )
    if kind == "numpy":
        return NumpyItems(X, y)
    if kind == "image_folder":
        root = tmp_path_factory.mktemp("folder")
        for i, (img, label) in enumerate(zip(X, y)):
            folder = root / f"c{label}"
            folder.mkdir(exist_ok=True)
            Image.fromarray(img[0]).save(folder / f"{i:04d}.png")
        return ImageFolder(root, transform=ToTensor(), loader=load_grey)
    raise ValueError(kind)


KINDS = [
    "tensor_uint8",
    "tensor_float",
    "pil",
    "pil_totensor",
    "pil_rgb",
    "subset",
    "concat",
    "numpy",
    "image_folder",
]


@pytest.fixture(scope="module", params=KINDS)
def case(request, data, tmp_path_factory):
    base = make_kind(request.param, data, tmp_path_factory)
    with pytest.warns(UserWarning) if request.param == "concat" else _nullcontext():
        ds = OversampledDataset(base, **FIT)
    return request.param, base, ds


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def same(a, b):
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, Image.Image):
        return (
            isinstance(b, Image.Image)
            and a.mode == b.mode
            and np.array_equal(np.asarray(a), np.asarray(b))
        )
    return a == b


def test_length_and_class_balance(case):
    _, base, ds = case
    assert ds.n_real == len(base) == sum(COUNTS)
    assert len(ds) == ds.n_real + ds.n_synthetic == 3 * COUNTS[0]
    assert Counter(ds.targets) == {0: 40, 1: 40, 2: 40}
    assert Counter(int(ds[i][1]) for i in range(len(ds))) == {0: 40, 1: 40, 2: 40}


def test_real_items_are_returned_unchanged(case):
    _, base, ds = case
    for i in (0, 17, ds.n_real - 1):
        (a, ta), (b, tb) = ds[i], base[i]
        assert same(a, b) and same(ta, tb)


def test_synthetic_items_look_like_real_ones(case):
    kind, base, ds = case
    real_image, real_target = base[0]
    for i in (ds.n_real, len(ds) - 1):
        image, target = ds[i]
        assert type(image) is type(real_image)
        assert type(target) is type(real_target)
        if isinstance(image, torch.Tensor):
            assert image.shape == real_image.shape and image.dtype == real_image.dtype
            lo, hi = (0, 255) if image.dtype == torch.uint8 else (0.0, 1.0)
            assert image.min() >= lo and image.max() <= hi
        elif isinstance(image, np.ndarray):
            assert image.shape == real_image.shape and image.dtype == real_image.dtype
        else:
            assert image.mode == real_image.mode and image.size == real_image.size
        origin = ds.origin(i)
        assert int(target) == ds.targets[i] == origin["label"]
        # Made from two real items of its own class, and a new image: neither of them.
        pixels = np.asarray(image, dtype=np.float64)
        for source in (origin["base"], origin["neighbor"]):
            real, label = base[source]
            assert source < ds.n_real and int(label) == int(target)
            assert pixels.shape == np.asarray(real).shape
            assert not np.array_equal(pixels, np.asarray(real, dtype=np.float64))
        assert same(ds[i][0], image)  # the same item every time it is read
    # Two synthetic images are new images, not one image repeated.
    first, last = ds[ds.n_real][0], ds[len(ds) - 1][0]
    as_array = [np.asarray(image, dtype=np.float64) for image in (first, last)]
    assert all(a.std() > 0 for a in as_array) and not np.array_equal(*as_array)


def test_provenance_of_synthetic_items(case):
    _, _, ds = case
    assert ds.origin(0) is None and not ds.is_synthetic(0)
    info = ds.origin(len(ds) - 1)
    assert ds.is_synthetic(len(ds) - 1)
    assert info["label"] == ds.targets[-1] == 2
    assert ds.targets[info["base"]] == ds.targets[info["neighbor"]] == 2
    assert 0 <= info["lam"] < 1


def test_items_are_deterministic_for_a_seed_and_fresh_per_epoch(case):
    _, _, ds = case
    i = len(ds) - 3
    first = ds[i][0]
    clone = pickle.loads(pickle.dumps(ds))
    assert same(clone[i][0], first)
    ds.set_epoch(1)
    try:
        assert ds.origin(i) != clone.origin(i)
        clone.set_epoch(1)
        assert same(ds[i][0], clone[i][0])
    finally:
        ds.set_epoch(0)
    assert same(ds[i][0], first)


def test_dataloader_with_workers_gives_the_same_items(case):
    kind, _, ds = case
    if kind not in ("tensor_uint8", "pil_totensor"):
        pytest.skip("workers are covered on two kinds; the others share the code path")
    serial = [item for batch in DataLoader(ds, batch_size=16, collate_fn=as_list) for item in batch]
    loader = DataLoader(
        ds, batch_size=16, num_workers=2, collate_fn=as_list, multiprocessing_context="fork"
    )
    forked = [item for batch in loader for item in batch]
    assert len(forked) == len(serial) == len(ds)
    assert all(same(a[0], b[0]) and same(a[1], b[1]) for a, b in zip(serial, forked))


def test_spawned_workers_and_persistent_workers_see_set_epoch(data):
    X, y = data
    ds = OversampledDataset(TensorDataset(torch.from_numpy(X), torch.from_numpy(y)), **FIT)
    loader = DataLoader(
        ds, batch_size=32, num_workers=1, multiprocessing_context="spawn", persistent_workers=True
    )
    epochs = []
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        epochs.append(torch.cat([images for images, _ in loader]))
    expected = []
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        expected.append(torch.stack([ds[i][0] for i in range(len(ds))]))
    assert torch.equal(epochs[0], expected[0]) and torch.equal(epochs[1], expected[1])
    assert not torch.equal(epochs[0][ds.n_real :], epochs[1][ds.n_real :])


def test_transforms_apply_to_synthetic_and_optionally_to_real(data):
    X, y = data
    base = VisionLike(X, y, transform=ToTensor(), target_transform=lambda t: t + 100)
    model = DeepSMOTE(**FIT).fit(X, y)
    ds = OversampledDataset(base, model, transform=Flip(), target_transform=lambda t: -t)
    plain = OversampledDataset(base, model)
    i = len(ds) - 1
    assert torch.equal(ds[i][0], torch.flip(plain[i][0], dims=[-1]))
    assert plain[i][1] == 102 and ds[i][1] == -102  # the dataset's own, then the wrapper's
    assert same(ds[0][0], base[0][0]) and ds[0][1] == base[0][1]
    both = OversampledDataset(base, model, transform=Flip(), transform_real=True)
    assert torch.equal(both[0][0], torch.flip(base[0][0], dims=[-1]))


def test_labels_are_found_or_given(data):
    X, y = data
    ds = OversampledDataset(NumpyItems(X, y), **FIT)  # one pass over targets
    assert ds.targets[: len(y)] == y.tolist()
    relabelled = OversampledDataset(NumpyItems(X, y), labels=y + 5, **FIT)
    assert Counter(relabelled.targets) == {5: 40, 6: 40, 7: 40}
    # Labels that merge classes would give synthetic items another target than real ones.
    with pytest.raises(ValueError, match="one-to-one"):
        OversampledDataset(NumpyItems(X, y), labels=(y == 0).astype(int), **FIT)
    with pytest.raises(ValueError, match="one label per image"):
        OversampledDataset(NumpyItems(X, y), labels=y[:-1], **FIT)


def test_classes_and_class_to_idx(data):
    X, y = data
    ds = OversampledDataset(Subset(VisionLike(X, y), range(len(y))), **FIT)
    assert ds.classes == ["class 0", "class 1", "class 2"]
    plain = OversampledDataset(TensorDataset(torch.from_numpy(X), torch.from_numpy(y)), **FIT)
    assert plain.classes == [0, 1, 2] and plain.class_to_idx == {0: 0, 1: 1, 2: 2}


def test_sampling_strategy_and_index_errors(data):
    X, y = data
    model = DeepSMOTE(**FIT).fit(X, y)
    ds = OversampledDataset(
        TensorDataset(torch.from_numpy(X), torch.from_numpy(y)), model, sampling_strategy="minority"
    )
    assert Counter(ds.targets) == {0: 40, 1: 16, 2: 40}
    assert same(ds[-1][0], ds[len(ds) - 1][0])
    with pytest.raises(IndexError, match="out of range"):
        ds[len(ds)]


def test_bad_arguments(data):
    X, y = data
    base = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    with pytest.raises(ValueError, match="on_mismatch"):
        OversampledDataset(base, on_mismatch="ignore", **FIT)
    with pytest.raises(ValueError, match="unfitted"):
        OversampledDataset(base, DeepSMOTE())
    with pytest.raises(ValueError, match="len\\(dataset\\)=0"):
        OversampledDataset(TensorDataset(torch.zeros(0, 1, 8, 8), torch.zeros(0)), **FIT)
    model = DeepSMOTE(**FIT).fit(X, y)
    with pytest.raises(ValueError, match="model"):
        OversampledDataset(base, model, max_epochs=3)
    small = TensorDataset(torch.from_numpy(X[:, :, :8, :8]), torch.from_numpy(y))
    with pytest.raises(ValueError, match="shape"):
        OversampledDataset(small, model)


def test_sampler_drives_fresh_epochs_and_splits_ranks(data):
    from torch_deepsmote import ClassBalancedBatchSampler, DeepSMOTESampler

    X, y = data
    ds = OversampledDataset(TensorDataset(torch.from_numpy(X), torch.from_numpy(y)), **FIT)
    ranks = [DeepSMOTESampler(ds, num_replicas=2, rank=r, seed=1) for r in (0, 1)]
    for sampler in ranks:
        sampler.set_epoch(3)
    assert ds.epoch == 3
    shares = [list(s) for s in ranks]
    assert len(shares[0]) == len(shares[1]) == len(ds) // 2
    assert set(shares[0]).isdisjoint(shares[1])
    assert set(shares[0]) | set(shares[1]) == set(range(len(ds)))
    batches = ClassBalancedBatchSampler(ds, batch_size=12, seed=0)
    for batch in DataLoader(ds, batch_sampler=batches):
        assert torch.bincount(batch[1], minlength=3).tolist() == [4, 4, 4]
    ds.set_epoch(0)


# ---------------------------------------------------------------------- the pool
def test_pool_serves_the_same_items_without_decoding_again(data, monkeypatch):
    X, y = data
    base = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    model = DeepSMOTE(**FIT).fit(X, y)
    plain = OversampledDataset(base, model, pool=False)
    pooled = OversampledDataset(base, model, pool=True)
    decoded = []
    decode = pooled.synthesizer.images
    monkeypatch.setattr(
        pooled.synthesizer, "images", lambda p, *a: decoded.append(len(p)) or decode(p, *a)
    )
    for epoch in (0, 1):
        plain.set_epoch(epoch)
        pooled.set_epoch(epoch)  # epoch 1: refills the pool, one pass over the synthetic set
        assert sum(decoded) == epoch * pooled.n_synthetic
        got = torch.cat([x for x, _ in DataLoader(pooled, batch_size=16)])
        assert sum(decoded) == epoch * pooled.n_synthetic  # items came from the pool
        assert torch.equal(got, torch.stack([plain[i][0] for i in range(len(plain))]))


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_pool_is_shared_with_persistent_workers(data, context):
    X, y = data
    base = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    model = DeepSMOTE(**FIT).fit(X, y)
    plain = OversampledDataset(base, model, pool=False)
    pooled = OversampledDataset(base, model, pool=True)
    loader = DataLoader(
        pooled,
        batch_size=32,
        num_workers=1,
        multiprocessing_context=context,
        persistent_workers=True,
    )
    for epoch in (0, 1):
        pooled.set_epoch(epoch)
        plain.set_epoch(epoch)
        got = torch.cat([images for images, _ in loader])
        assert torch.equal(got, torch.stack([plain[i][0] for i in range(len(plain))]))


def test_pool_must_be_a_bool_or_auto(data):
    X, y = data
    base = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    with pytest.raises(TypeError, match="pool"):
        OversampledDataset(base, pool=1, **FIT)
    with pytest.raises(ValueError, match=r"`pool` should be True, False or 'auto'.*'always'"):
        OversampledDataset(base, pool="always", **FIT)


def test_by_default_a_fixed_synthetic_set_is_decoded_once_not_every_epoch(data, monkeypatch):
    X, y = data
    base = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    model = DeepSMOTE(**FIT).fit(X, y)
    decoded = []
    decode = model.synthesizer_.images
    monkeypatch.setattr(
        model.synthesizer_, "images", lambda p, *a: decoded.append(len(p)) or decode(p, *a)
    )
    ds = OversampledDataset(base, model)  # pool='auto': a few KB fit in memory
    assert ds.pool and sum(decoded) == ds.n_synthetic  # decoded once, at construction
    for _ in range(3):  # three epochs of the paper's fixed set
        assert len(list(DataLoader(ds, batch_size=16, num_workers=0))) == -(-len(ds) // 16)
    assert sum(decoded) == ds.n_synthetic


def test_auto_pool_stays_off_when_the_set_would_not_fit_in_memory(data, monkeypatch):
    import torch_deepsmote.reading as module  # the one memory rule: memory_allows

    X, y = data
    base = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    model = DeepSMOTE(**FIT).fit(X, y)
    monkeypatch.setattr(module, "available_memory", lambda: 1000)  # bytes
    ds = OversampledDataset(base, model)
    assert not ds.pool  # decoded per batch instead
    needed = ds.n_synthetic * int(np.prod(model.image_shape_))
    monkeypatch.setattr(module, "available_memory", lambda: 4 * needed)
    assert OversampledDataset(base, model).pool
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # two ranks on this machine share it
    assert not OversampledDataset(base, model).pool


# ---------------------------------------------------------------------- issue 11's bugs
class JointTransformed(VisionLike):
    """Like torchvision's VOC: ``transforms`` takes (image, target) together."""

    def __init__(self, images, labels, transforms):
        super().__init__(images, labels)
        self.transforms = transforms

    def __getitem__(self, i):
        image, target = super().__getitem__(i)
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target


def tensor_and_shifted_target(image, target):
    return ToTensor()(image), target + 10


def test_synthetic_items_get_the_wrapped_datasets_joint_transforms(data):
    X, y = data
    base = JointTransformed(X, y, tensor_and_shifted_target)
    ds = OversampledDataset(base, **FIT)
    assert base.transforms is tensor_and_shifted_target  # set aside while fitting, restored
    real, synthetic = ds[0], ds[len(ds) - 1]
    assert isinstance(real[0], torch.Tensor) and real[1] == int(y[0]) + 10
    assert isinstance(synthetic[0], torch.Tensor) and synthetic[0].shape == real[0].shape
    assert synthetic[1] == 2 + 10


def _mixed_size_folder(root):
    X, y = make_shapes(COUNTS)
    for i, (img, label) in enumerate(zip(X, y)):
        (root / f"c{label}").mkdir(exist_ok=True)
        side = 16 + 4 * (i % 3)  # 16, 20 and 24 pixels: a real folder's mix
        Image.fromarray(img[0]).resize((side, side)).save(root / f"c{label}" / f"{i:03d}.png")
    return root


def test_an_image_folder_of_mixed_sizes_fits_with_fit_transform(tmp_path):
    from torchvision.transforms import Compose, RandomResizedCrop, Resize

    root = _mixed_size_folder(tmp_path)
    # No deterministic head gives one size: the error says what to pass.
    folder = ImageFolder(
        root, transform=Compose([RandomResizedCrop(16), ToTensor()]), loader=load_grey
    )
    with pytest.raises(ValueError, match=r"fit_transform=torchvision.transforms.Resize"):
        OversampledDataset(folder, **FIT)
    ds = OversampledDataset(folder, fit_transform=Resize((16, 16)), **FIT)
    assert ds.model.image_shape_ == (1, 16, 16)
    real, synthetic = ds[0][0], ds[len(ds) - 1][0]
    assert real.shape == synthetic.shape == (1, 16, 16) and synthetic.dtype == real.dtype


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_a_torchvision_pipeline_with_resize_fits_on_its_deterministic_head(tmp_path, version):
    if version == "v1":
        from torchvision.transforms import Compose, RandomHorizontalFlip, Resize

        to_tensor = ToTensor()
    else:
        from torchvision.transforms.v2 import (
            Compose,
            RandomHorizontalFlip,
            Resize,
            ToDtype,
            ToImage,
        )

        to_tensor = Compose([ToImage(), ToDtype(torch.float32, scale=True)])
    transform = Compose([Resize((16, 16)), RandomHorizontalFlip(p=1.0), to_tensor])
    folder = ImageFolder(_mixed_size_folder(tmp_path), transform=transform, loader=load_grey)
    ds = OversampledDataset(folder, **FIT)  # the user's own pipeline says the size
    assert folder.transform is transform  # restored after fitting
    assert ds.model.image_shape_ == (1, 16, 16)
    real, synthetic = ds[0][0], ds[len(ds) - 1][0]
    assert real.shape == synthetic.shape == (1, 16, 16) and synthetic.dtype == real.dtype
    # Synthetic items are made in the head's output form (a 16x16 grey PIL image) and get
    # the random tail: here a certain flip, then the tensor conversion.
    raw = ds.raw_items(ds.plan()[-1:])[0][0]
    assert isinstance(raw, Image.Image) and raw.size == (16, 16)
    expected = torch.from_numpy(np.array(raw)).flip(-1).float()[None] / 255
    torch.testing.assert_close(synthetic, expected)


def test_a_model_fitted_on_other_data_is_refused(data):
    X, y = data
    base = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    floats = TensorDataset(torch.from_numpy(X).float() / 255, torch.from_numpy(y))
    model = DeepSMOTE(**FIT).fit(X, y)
    with pytest.raises(ValueError, match="dtype and value range"):
        OversampledDataset(floats, model)
    order = np.argsort(-y, kind="stable")  # the same images and labels, in another order
    with pytest.raises(ValueError, match="fitted on this dataset"):
        OversampledDataset(TensorDataset(torch.from_numpy(X[order]), torch.from_numpy(y)), model)
    edited = torch.from_numpy(X).clone()
    edited[5, 0, 3, 3] ^= 1
    with pytest.raises(ValueError, match="pixels differ"):
        OversampledDataset(TensorDataset(edited, torch.from_numpy(y)), model)
    # A model fitted on arrays serves tensor items of the same dtype and range.
    assert OversampledDataset(base, model, progress=False).n_synthetic == 58
    fitted_here = DeepSMOTE(**FIT).fit_dataset(base)
    assert OversampledDataset(base, fitted_here).synthesizer is fitted_here.synthesizer_


def test_class_to_idx_for_labels_that_are_not_positions(data):
    X, y = data
    labels = torch.from_numpy(np.array([3, 7, 9])[y])
    ds = OversampledDataset(TensorDataset(torch.from_numpy(X), labels), **FIT)
    assert ds.classes == [3, 7, 9] and ds.class_to_idx == {3: 3, 7: 7, 9: 9}
    assert Counter(ds.targets) == {3: 40, 7: 40, 9: 40}


class CountingItems(NumpyItems):
    calls = 0

    def __getitem__(self, i):
        type(self).calls += 1
        return super().__getitem__(i)


def test_a_dataset_without_targets_is_read_once_while_fitting(data):
    X, y = data
    CountingItems.calls = 0
    OversampledDataset(CountingItems(X, y), **FIT)
    assert CountingItems.calls == len(y)


def test_fit_dataset_reads_the_dataset_as_the_wrapper_does(data):
    X, y = data
    calls = []

    def augment(image):
        calls.append(1)
        return ToTensor()(image)

    base = VisionLike(X, y, transform=augment)
    model = DeepSMOTE(**FIT).fit_dataset(base)
    wrapped = OversampledDataset(base, **FIT)
    assert calls == [] and base.transform is augment  # set aside by both, restored
    assert torch.equal(model.latents_, wrapped.model.latents_)
    assert model.image_format_ == wrapped.model.image_format_
    assert model.image_format_.kind == "pil" and model.image_format_.mode == "L"
    sample = model.sample(3, 1, random_state=0)  # the items' own form: PIL images
    assert len(sample) == 3 and all(isinstance(s, Image.Image) for s in sample)


@pytest.mark.parametrize("copy_with", ["pickle", "deepcopy"])
def test_copies_keep_their_model_and_serve_the_same_items(data, copy_with):
    import copy

    X, y = data
    ds = OversampledDataset(VisionLike(X, y, transform=ToTensor()), **FIT)
    ds.set_epoch(2)
    clone = pickle.loads(pickle.dumps(ds)) if copy_with == "pickle" else copy.deepcopy(ds)
    assert clone.epoch == 2 and clone.model is not ds.model
    assert torch.equal(clone.model.latents_, ds.model.latents_)
    assert clone.synthesizer is clone.model.synthesizer_  # still one owner in the copy
    for i in (0, ds.n_real, len(ds) - 1):
        assert same(clone[i][0], ds[i][0]) and clone[i][1] == ds[i][1]
    assert clone.origin(len(ds) - 1) == ds.origin(len(ds) - 1)
    ds.set_epoch(0)


def test_fit_transform_overrides_the_head_of_the_datasets_compose(tmp_path):
    from torchvision.transforms import Compose, Resize

    transform = Compose([Resize((16, 16)), ToTensor()])
    folder = ImageFolder(_mixed_size_folder(tmp_path), transform=transform, loader=load_grey)
    ds = OversampledDataset(folder, fit_transform=Resize((12, 12)), **FIT)
    assert ds.model.image_shape_ == (1, 12, 12)  # fitted on the override's output
    raw = ds.raw_items(ds.plan()[-1:])[0][0]
    assert isinstance(raw, Image.Image) and raw.size == (12, 12)
    # ... and the synthetic items then get the whole Compose, like the real ones.
    assert ds[0][0].shape == ds[len(ds) - 1][0].shape == (1, 16, 16)
