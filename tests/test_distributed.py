"""Fitting and serving under torch.distributed: two CPU processes with the gloo backend.

One spawn of two ranks fits through ``OversampledDataset(cache_dir=...)`` (a collective fit,
rank 0 writing the cache), fits again through ``DeepSMOTE.fit`` with a checkpoint folder,
resumes from that checkpoint, and serves an epoch through ``DeepSMOTESampler``. Each rank
saves what it saw; the test process compares the ranks with each other and with what one
process computes from the same cache.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from helpers import FIT, TINY, make_shapes
from torch.utils.data import DistributedSampler, TensorDataset

import torch_deepsmote.fitting as fitting
from torch_deepsmote import DeepSMOTE, DeepSMOTESampler, OversampledDataset
from torch_deepsmote.distributed import Ranks, current_ranks, map_row_blocks, split_classes
from torch_deepsmote.distributed import class_neighbors as ranked_class_neighbors
from torch_deepsmote.knn import class_neighbors
from torch_deepsmote.storage.checkpoint import CHECKPOINT_NAME
from torch_deepsmote.training import _shard

WORLD = 2
COUNTS = (48, 20, 9, 6)
OPTIONS = dict(TINY, max_epochs=3, patience=0, random_state=0)


def _data(rank: int = 0, differ: bool = False) -> TensorDataset:
    images, labels = make_shapes(COUNTS, size=16, seed=1 if differ and rank == 1 else 0)
    return TensorDataset(torch.from_numpy(images), torch.from_numpy(labels))


def _weights(model: DeepSMOTE) -> dict:
    return {
        **{f"encoder.{k}": v.clone() for k, v in model.encoder_.state_dict().items()},
        **{f"decoder.{k}": v.clone() for k, v in model.decoder_.state_dict().items()},
    }


def _worker(rank: int, folder: str, differ: bool) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=WORLD
    )
    try:
        if differ:  # rank 1 holds other images, then other options: both ranks refuse
            errors = []
            for data, options in (
                (_data(rank, differ=True), OPTIONS),
                (_data(), {**OPTIONS, "residual": rank == 0}),
            ):
                try:
                    DeepSMOTE(**options).fit_dataset(data)
                except RuntimeError as error:
                    errors.append(str(error))
            torch.save({"errors": errors}, f"{folder}/rank{rank}.pt")
            return
        data = _data()
        balanced = OversampledDataset(data, cache_dir=f"{folder}/cache", **OPTIONS)
        sampler = DeepSMOTESampler(balanced, seed=3)
        sampler.set_epoch(1)
        indices = list(sampler)
        items = balanced.__getitems__(indices)
        again = DeepSMOTE(checkpoint_dir=f"{folder}/ckpt", **OPTIONS).fit_dataset(data)
        unseeded = DeepSMOTE(**{**OPTIONS, "random_state": None}).fit_dataset(data)
        ranks = Ranks(rank, WORLD)
        one_row = map_row_blocks(
            lambda rows: torch.arange(rows.start, rows.stop)[:, None], 1, ranks
        )
        resumed = DeepSMOTE(checkpoint_dir=f"{folder}/ckpt", **OPTIONS).fit_dataset(data)
        torch.save(
            {
                "weights": _weights(balanced.model),
                "history": balanced.model.history_,
                "latents": balanced.model.latents_.clone(),
                "neighbors": balanced.model.neighbors_.clone(),
                "plan": balanced.plan(),
                "indices": indices,
                "images": torch.stack([image for image, _ in items]),
                "targets": torch.stack([torch.as_tensor(t) for _, t in items]),
                "weights_again": _weights(again),
                "history_again": again.history_,
                "weights_resumed": _weights(resumed),
                "unseeded_weights": _weights(unseeded),
                "unseeded_plan": unseeded.plan({3: 5}).base,
                "one_row": one_row,
                "checkpoint": torch.load(f"{folder}/ckpt/{CHECKPOINT_NAME}", weights_only=True),
            },
            f"{folder}/rank{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


def _spawn(folder, differ: bool = False) -> list[dict]:
    mp.spawn(_worker, args=(str(folder), differ), nprocs=WORLD, join=True)
    return [torch.load(folder / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


@pytest.fixture(scope="module")
def ranks_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    return folder, _spawn(folder)


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_ranks_train_one_model_and_only_rank_0_writes_the_cache(ranks_run):
    folder, (r0, r1) = ranks_run
    # Rank 1 loaded the cache that rank 0 wrote; the fits without a cache kept each rank's
    # own result, the same on both (one epoch loss, one best epoch, rank 0's BatchNorm).
    _assert_same(r0["weights"], r1["weights"])
    _assert_same(r0["weights_again"], r1["weights_again"])
    assert [e["loss"] for e in r0["history_again"]] == [e["loss"] for e in r1["history_again"]]
    assert len(r0["history"]) == OPTIONS["max_epochs"]
    assert r0["history"][-1]["loss"] < r0["history"][0]["loss"]
    # One cache file, no per-rank parts, and the fit's checkpoint removed once it was written.
    assert sorted(p.name for p in (folder / "cache").iterdir()) == [
        "deepsmote.h5",
        "deepsmote.h5.lock",
    ]
    # The same data and seed give the same weights again; the penalty draws are seeded per rank.
    _assert_same(r0["weights"], r0["weights_again"])
    assert r0["history"] == [
        {**e, "seconds": h["seconds"]} for e, h in zip(r0["history_again"], r0["history"])
    ]


def test_ranks_fit_differs_from_one_process_fit(ranks_run):
    # Each rank trains on its half of every epoch and draws its own penalty classes: not
    # the run of one process (which the same seed would give on every rank without DDP).
    _, (r0, _) = ranks_run
    alone = DeepSMOTE(distributed=False, **OPTIONS).fit_dataset(_data())
    key = "decoder.fc.0.weight"
    assert not torch.equal(_weights(alone)[key], r0["weights"][key])
    assert alone.history_[0]["loss"] != r0["history"][0]["loss"]
    # Yet both are the same fit in kind: as many epochs, every loss finite and falling, and
    # epoch losses of the same size (same data, model and initial weights; the ranks take
    # half the steps per epoch, with twice the batch).
    ranks, single = [h["loss"] for h in r0["history"]], [h["loss"] for h in alone.history_]
    assert len(ranks) == len(single) == OPTIONS["max_epochs"]
    assert all(math.isfinite(v) for v in ranks + single)
    assert ranks[-1] < ranks[0] and single[-1] < single[0]
    assert all(0.5 < a / b < 2 for a, b in zip(ranks, single))
    drift = (_weights(alone)[key] - r0["weights"][key]).norm() / r0["weights"][key].norm()
    assert 0 < float(drift) < 1


def test_epoch_shards_follow_the_distributed_sampler_rule():
    order = torch.randperm(11, generator=torch.Generator().manual_seed(0))
    for rank in range(3):
        sampler = DistributedSampler(range(11), num_replicas=3, rank=rank, shuffle=False)
        assert _shard(order, Ranks(rank, 3)).tolist() == order[list(sampler)].tolist()
    assert torch.equal(_shard(order, None), order)


def test_checkpoint_of_rank_0_holds_every_rank_and_resumes(ranks_run):
    _, (r0, r1) = ranks_run
    checkpoint = r0["checkpoint"]
    assert checkpoint["key"].endswith(f":world_size={WORLD}")
    assert len(checkpoint["penalty_generators"]) == WORLD
    assert not torch.equal(*checkpoint["penalty_generators"])  # each rank its own draws
    _assert_same(r0["weights_resumed"], r0["weights_again"])
    _assert_same(r1["weights_resumed"], r0["weights_again"])


def test_codes_and_neighbours_equal_one_process(ranks_run):
    folder, (r0, r1) = ranks_run
    assert torch.equal(r0["latents"], r1["latents"])
    assert torch.equal(r0["neighbors"], r1["neighbors"])
    # One process encoding every image with the cached model gets the ranks' codes.
    single = OversampledDataset(
        _data(), cache_dir=folder / "cache", on_mismatch="raise", distributed=False, **OPTIONS
    )
    codes = single.model.encode(_data().tensors[0])
    torch.testing.assert_close(codes, r0["latents"], rtol=0, atol=1e-5)
    labels = _data().tensors[1]
    expected, _ = class_neighbors(r0["latents"], labels, single.model.k_neighbors, knn="torch")
    assert torch.equal(r0["neighbors"], expected)


def test_ranks_serve_disjoint_shares_of_the_single_process_epoch(ranks_run):
    folder, (r0, r1) = ranks_run
    for key in ("base", "neighbor", "lam", "labels"):
        assert torch.equal(getattr(r0["plan"], key), getattr(r1["plan"], key)), key
    single = OversampledDataset(
        _data(), cache_dir=folder / "cache", on_mismatch="raise", distributed=False, **OPTIONS
    )
    sampler = DeepSMOTESampler(single, num_replicas=1, rank=0, seed=3)
    sampler.set_epoch(1)
    epoch = list(sampler)
    assert len(r0["indices"]) == len(r1["indices"]) == -(-len(single) // WORLD)
    assert sorted(set(r0["indices"]) | set(r1["indices"])) == sorted(epoch)
    padded = epoch + epoch[: WORLD * len(r0["indices"]) - len(epoch)]
    assert r0["indices"] == padded[0::WORLD] and r1["indices"] == padded[1::WORLD]
    for run in (r0, r1):
        items = single.__getitems__(run["indices"])
        assert torch.equal(torch.stack([image for image, _ in items]), run["images"])
        assert torch.equal(torch.stack([torch.as_tensor(t) for _, t in items]), run["targets"])


def test_ranks_with_different_data_or_options_refuse_to_fit(tmp_path):
    r0, r1 = _spawn(tmp_path, differ=True)
    for run in (r0, r1):
        data, options = run["errors"]
        assert "Every rank should fit the same data and settings" in data
        assert "differ in data (images and labels) (" in data
        assert "differ in residual (" in options and "distributed=False" in options


def test_an_unseeded_fit_draws_one_seed_for_all_ranks(ranks_run):
    _, (r0, r1) = ranks_run
    _assert_same(r0["unseeded_weights"], r1["unseeded_weights"])
    assert torch.equal(r0["unseeded_plan"], r1["unseeded_plan"])
    assert not torch.equal(
        r0["unseeded_weights"]["decoder.fc.0.weight"], r0["weights"]["decoder.fc.0.weight"]
    )


def test_row_blocks_with_an_empty_block_gather_every_row(ranks_run):
    _, (r0, r1) = ranks_run
    assert r0["one_row"].tolist() == r1["one_row"].tolist() == [[0]]


def test_split_classes_balances_the_search_cost():
    labels = torch.tensor([0] * 10 + [1] * 7 + [2] * 7 + [3] * 2)
    parts = split_classes(labels, 2)
    assert sorted(sum(parts, [])) == [0, 1, 2, 3]
    assert parts == [[0], [1, 2, 3]]  # costs n_c ** 2: 100 against 49 + 49 + 4
    assert split_classes(labels, 6)[4:] == [[], []]  # more ranks than classes


def test_ranked_neighbors_without_a_group_are_the_plain_search():
    latents = torch.randn(30, 3, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0] * 20 + [1] * 10)
    plain = class_neighbors(latents, labels, 3, knn="torch")
    ranked = ranked_class_neighbors(latents, labels, 3, "torch", None)
    assert torch.equal(plain[0], ranked[0]) and plain[1] == ranked[1]


def test_distributed_true_without_a_group_names_the_fix(monkeypatch):
    assert not dist.is_initialized()
    with monkeypatch.context() as patch:
        patch.setattr(fitting, "fit_autoencoder", lambda *a, **k: pytest.fail("trained"))
        with pytest.raises(RuntimeError, match="init_process_group") as error:
            DeepSMOTE(distributed=True, **OPTIONS).fit_dataset(_data())
    message = str(error.value)  # what is wrong, then both fixes
    assert "`distributed=True`" in message and "none is initialized" in message
    assert "torch.distributed.init_process_group() first (torchrun" in message
    assert "or pass distributed='auto' or False" in message
    # The second fix works: without a group, 'auto' and False fit in this process alone.
    assert current_ranks("auto") is None and current_ranks(False) is None
    X, y = make_shapes((8, 6), size=8)
    assert DeepSMOTE(**dict(FIT, distributed="auto")).fit(X, y).latents_.shape == (14, 8)
    with pytest.raises(ValueError, match="distributed='yes'") as error:
        DeepSMOTE(distributed="yes")
    assert "`distributed` should be True, False or 'auto'" in str(error.value)


def test_rank_zero_is_the_main_process_of_a_group():
    assert Ranks(0, 2).is_main is True and Ranks(1, 2).is_main is False
    assert Ranks(0, 1).is_main is True
    assert Ranks(1, 2).rank == 1 and Ranks(1, 2).world_size == 2


def _gpu_worker(rank: int, folder: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=WORLD
    )
    try:
        model = DeepSMOTE(device="cuda", **OPTIONS).fit_dataset(_data())
        torch.save(
            {
                "weights": {k: v.cpu() for k, v in _weights(model).items()},
                "latents": model.latents_.cpu(),
                "neighbors": model.neighbors_.cpu(),
                "history": model.history_,
            },
            f"{folder}/rank{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


@pytest.mark.gpu
def test_ranks_fit_on_cuda_with_gloo(tmp_path):
    # Both ranks on the one GPU of the device machine: DDP on CUDA tensors, the library's
    # collectives through gloo on the CPU.
    mp.spawn(_gpu_worker, args=(str(tmp_path),), nprocs=WORLD, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(WORLD))
    _assert_same(r0["weights"], r1["weights"])
    assert torch.equal(r0["latents"], r1["latents"]) and torch.equal(
        r0["neighbors"], r1["neighbors"]
    )
    assert len(r0["history"]) == OPTIONS["max_epochs"]
