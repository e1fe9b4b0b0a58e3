import threading
from collections import Counter
from pathlib import Path

import pytest
import torch
from PIL import Image

from tests.support.data import make_tiny_dataset
from tests.support.runs import cache_entries, stop_decoding_after, tiny_config
from tui_trainer.data.batches import TensorSplit, batch_order, iterate_batches
from tui_trainer.data.decode import decode_all
from tui_trainer.data.layout import BACKGROUND, DataError, Layout, find_layout, make_splits
from tui_trainer.errors import Stopped


def _labels(items):
    return Counter(label for _, label in items)


def test_layouts_are_recognised(tmp_path: Path):
    images = tmp_path / "caltech" / "101_ObjectCategories"
    make_tiny_dataset(images)
    (tmp_path / "caltech" / "train.txt").write_text("circle/img_00.jpg\n")
    (tmp_path / "caltech" / "test.txt").write_text("circle/img_01.jpg\n")
    parent = find_layout(tmp_path / "caltech")
    assert parent == Layout(images, tmp_path / "caltech")
    assert find_layout(images) == parent  # pointing at 101_ObjectCategories itself
    tv = tmp_path / "tv"
    (tv / "caltech101").mkdir(parents=True)
    (tv / "caltech101" / "101_ObjectCategories").symlink_to(images)
    assert find_layout(tv).images_dir == tv / "caltech101" / "101_ObjectCategories"


def test_imagefolder_layout_without_split_files_gets_a_seeded_stratified_split(tiny_data):
    cfg = tiny_config()
    a = make_splits(find_layout(tiny_data), cfg)
    b = make_splits(find_layout(tiny_data), cfg)
    assert a.split_source == "seeded" and a.classes == ["circle", "square", "stripes"]
    assert (a.train, a.val, a.test) == (b.train, b.val, b.test)
    c = make_splits(find_layout(tiny_data), tiny_config(seed=7))
    assert c.train != a.train
    everything = a.train + a.val + a.test
    assert len(set(everything)) == len(everything) == 13 + 13 + 12
    # stratified: every class is in every split, in the same proportions (+-1)
    for split in (a.train, a.val, a.test):
        counts = _labels(split)
        assert set(counts) == {0, 1, 2} and max(counts.values()) - min(counts.values()) <= 1


def test_real_split_files_drop_background_and_keep_the_given_split(real_data):
    cfg = tiny_config(classes=0)
    splits = make_splits(find_layout(real_data), cfg)
    assert splits.split_source == "files" and len(splits.classes) == 101
    assert BACKGROUND not in splits.classes
    assert len(splits.test) == 2893 and len(splits.train) + len(splits.val) == 5784
    assert abs(len(splits.train) - len(splits.val)) <= 101
    # train/val is stratified: per class the halves differ by at most one image
    tr, va = _labels(splits.train), _labels(splits.val)
    assert all(abs(tr[c] - va[c]) <= 1 for c in range(101))


def test_classes_limit_takes_the_first_n_by_name(real_data):
    splits = make_splits(find_layout(real_data), tiny_config(classes=5))
    assert splits.classes == ["Faces", "Faces_easy", "Leopards", "Motorbikes", "accordion"]
    assert {label for _, label in splits.test} == set(range(5))


def test_decode_converts_grayscale_to_rgb_and_skips_corrupt_files(tiny_data):
    paths = [
        tiny_data / "circle" / "img_gray.jpg",
        tiny_data / "square" / "img_corrupt.jpg",
        tiny_data / "stripes" / "img_00.jpg",
    ]
    assert Image.open(paths[0]).mode == "L"
    decoded = decode_all(paths, 72, 64, use_cache=False)
    assert decoded.images.shape == (3, 3, 64, 64) and decoded.images.dtype == torch.uint8
    assert decoded.bad == [1]
    gray = decoded.images[0].int()
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])


def test_decode_cache_is_reused_and_invalidated_when_a_file_changes(tmp_path):
    root = make_tiny_dataset(tmp_path / "imgs", per_class=2)
    paths = sorted(root.glob("circle/*.jpg"))
    first = decode_all(paths, 72, 64)
    second = decode_all(paths, 72, 64)
    assert not first.from_cache and second.from_cache
    assert torch.equal(first.images, second.images)
    Image.new("RGB", (90, 90), (255, 255, 255)).save(paths[0])
    third = decode_all(paths, 72, 64)
    assert not third.from_cache and third.images[0].min() == 255


def test_a_stop_ends_the_decode_within_the_images_in_flight_and_caches_nothing(
    tiny_data, monkeypatch
):
    paths = sorted(tiny_data.glob("*/*.jpg"))
    stop = threading.Event()
    decoded = stop_decoding_after(monkeypatch, 5, stop.set)
    with pytest.raises(Stopped, match=rf"^stopped after decoding \d+/{len(paths)} images$"):
        decode_all(paths, 72, 64, threads=2, stop=stop)
    assert 5 <= len(decoded) <= 6  # the other thread may have had one image in hand
    assert cache_entries() == []  # a partial decode is never cached
    whole = decode_all(paths, 72, 64, threads=2)  # no stop: decoded again, then cached
    assert not whole.from_cache and len(cache_entries()) == 1


def test_missing_and_empty_data_folders_are_user_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist: pass --data DIR"):
        find_layout(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="is empty"):
        find_layout(tmp_path / "empty")
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="no 101_ObjectCategories/ and no class subfolders"):
        find_layout(tmp_path / "flat")


def test_split_file_naming_a_missing_image_is_refused(tmp_path):
    images = make_tiny_dataset(tmp_path / "101_ObjectCategories", per_class=4)
    (tmp_path / "train.txt").write_text("circle/img_00.jpg\ncircle/img_99.jpg\n")
    (tmp_path / "test.txt").write_text("circle/img_01.jpg\n")
    with pytest.raises(DataError, match=r"train.txt:2 names circle/img_99.jpg"):
        make_splits(find_layout(images), tiny_config())


def test_class_with_too_few_images_is_refused(tmp_path):
    root = make_tiny_dataset(tmp_path / "imgs", per_class=4)
    lonely = root / "lonely"
    lonely.mkdir()
    Image.new("RGB", (80, 80)).save(lonely / "only.jpg")
    with pytest.raises(DataError, match=r"class 'lonely' has 1 image\(s\), too few to split"):
        make_splits(find_layout(root), tiny_config())


def _numbered_split(device: str = "cpu") -> TensorSplit:
    """Ten 2x2 images whose pixels and label are their index."""
    return TensorSplit(
        torch.arange(10, dtype=torch.uint8, device=device).view(10, 1, 1, 1).expand(10, 3, 2, 2),
        torch.arange(10, device=device),
        [str(i) for i in range(10)],
    )


def test_batches_follow_the_seeded_order_and_cover_the_split():
    split = _numbered_split()
    order = batch_order(10, seed=3, epoch=1, shuffle=True)
    assert torch.equal(order, batch_order(10, seed=3, epoch=1, shuffle=True))
    assert not torch.equal(order, batch_order(10, seed=3, epoch=2, shuffle=True))
    batches = list(iterate_batches(split, 4, order))
    assert [len(y) for _, y in batches] == [4, 4, 2]
    labels = torch.cat([y for _, y in batches])
    assert torch.equal(labels, order) and torch.equal(
        torch.cat([x for x, _ in batches])[:, 0, 0, 0], order.to(torch.uint8)
    )


def test_pin_leaves_a_split_held_off_the_cpu_where_it_is():
    # frozen features cached on the GPU: pinned host memory cannot receive their gather
    order = batch_order(10, seed=3, epoch=1, shuffle=True)
    batches = list(iterate_batches(_numbered_split("meta"), 4, order, pin=True))
    assert [x.device.type for x, _ in batches] == ["meta"] * 3
    assert [tuple(x.shape) for x, _ in batches] == [(4, 3, 2, 2), (4, 3, 2, 2), (2, 3, 2, 2)]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="pinned memory needs CUDA")
def test_pinned_batches_equal_plain_ones_for_cpu_and_cuda_splits():
    order = batch_order(10, seed=3, epoch=1, shuffle=True)
    for device in ("cpu", "cuda"):
        split = _numbered_split(device)
        plain = list(iterate_batches(split, 4, order))
        pinned = list(iterate_batches(split, 4, order, pin=True))
        for (x, y), (px, py) in zip(plain, pinned, strict=True):
            assert torch.equal(x, px) and torch.equal(y, py)
            assert px.is_pinned() == (device == "cpu")


def _truncate(entry: Path, other: Path) -> None:
    entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])


def _wrong_shape(entry: Path, other: Path) -> None:
    # an entry as today's code writes it, but holding one image too few at another size
    data = torch.load(entry, weights_only=True)
    torch.save({**data, "images": data["images"][:-1, :, :32, :32].clone()}, entry)


def _wrong_dtype(entry: Path, other: Path) -> None:
    data = torch.load(entry, weights_only=True)
    torch.save({**data, "images": data["images"].float()}, entry)


def _another_entry(entry: Path, other: Path) -> None:
    other.replace(entry)  # another file list's entry, same count and size, under this key


def _old_format_wrong_count(entry: Path, other: Path) -> None:
    # written before the key and count were stored: only the shape can tell
    data = torch.load(entry, weights_only=True)
    torch.save({"images": data["images"][:-1].clone(), "bad": []}, entry)


@pytest.mark.parametrize(
    "damage", [_truncate, _wrong_shape, _wrong_dtype, _another_entry, _old_format_wrong_count]
)
def test_a_damaged_decode_cache_entry_is_rebuilt_with_one_warning(tmp_path, damage):
    root = make_tiny_dataset(tmp_path / "imgs", per_class=3)
    paths = sorted(root.glob("circle/*.jpg"))[:3]
    others = sorted(root.glob("stripes/*.jpg"))[:3]  # as many: only the key tells them apart
    fresh = decode_all(paths, 72, 64, use_cache=False)
    decode_all(others, 72, 64)
    other = cache_entries()[0]
    decode_all(paths, 72, 64)
    (entry,) = [p for p in cache_entries() if p != other]
    damage(entry, other)
    rebuilt = decode_all(paths, 72, 64)
    assert not rebuilt.from_cache and torch.equal(rebuilt.images, fresh.images)
    assert (
        len(rebuilt.warnings) == 1 and f"decode cache {entry} is damaged (" in (rebuilt.warnings[0])
    )
    again = decode_all(paths, 72, 64)  # rewritten: read back whole, no warning
    assert again.from_cache and torch.equal(again.images, fresh.images) and again.warnings == []


def test_an_entry_written_before_keys_were_stored_is_still_read(tmp_path):
    root = make_tiny_dataset(tmp_path / "imgs", per_class=2)
    paths = sorted(root.glob("circle/*.jpg"))
    first = decode_all(paths, 72, 64)
    (entry,) = cache_entries()
    torch.save({"images": first.images, "bad": first.bad}, entry)  # today's format
    second = decode_all(paths, 72, 64)
    assert second.from_cache and torch.equal(second.images, first.images) and not second.warnings


def test_a_cache_write_that_fails_in_torchs_writer_costs_only_the_cache(tmp_path, monkeypatch):
    from tui_trainer.data import decode

    def full_disk(path, state):
        raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")

    monkeypatch.setattr(decode, "save_checkpoint_atomic", full_disk)
    root = make_tiny_dataset(tmp_path / "imgs", per_class=2)
    paths = sorted(root.glob("circle/*.jpg"))
    decoded = decode_all(paths, 72, 64)
    assert decoded.images.shape[0] == len(paths) and cache_entries() == []
