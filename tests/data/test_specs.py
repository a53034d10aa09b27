"""Dataset specs and name lookup."""

from __future__ import annotations

import pytest

from zcnas.data import DATASETS, DatasetSpec, get_dataset
from zcnas.errors import UnknownNameError, UserError

# The rounded constants quoted in papers; the specs hold NATS-Bench's exact x / 255 values.
ROUNDED = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "ImageNet16-120": ((0.4811, 0.4575, 0.4079), (0.2479, 0.2402, 0.2553)),
}


def test_three_datasets_with_their_shapes():
    assert list(DATASETS) == ["cifar10", "cifar100", "ImageNet16-120"]
    shapes = {name: (s.num_classes, s.resolution, s.crop_padding) for name, s in DATASETS.items()}
    assert shapes == {
        "cifar10": (10, 32, 4),
        "cifar100": (100, 32, 4),
        "ImageNet16-120": (120, 16, 2),
    }
    assert DATASETS["ImageNet16-120"].input_shape == (3, 16, 16)


def test_constants_are_nats_bench_exact_values():
    assert DATASETS["cifar10"].mean == (125.3 / 255, 123.0 / 255, 113.9 / 255)
    assert DATASETS["cifar100"].std == (68.2 / 255, 65.4 / 255, 70.4 / 255)
    assert DATASETS["ImageNet16-120"].mean == (122.68 / 255, 116.66 / 255, 104.01 / 255)
    assert DATASETS["ImageNet16-120"].std == (63.22 / 255, 61.26 / 255, 65.09 / 255)


@pytest.mark.parametrize("name", list(ROUNDED))
def test_constants_agree_with_the_rounded_ones(name):
    mean, std = ROUNDED[name]
    assert DATASETS[name].mean == pytest.approx(mean, abs=3e-4)
    assert DATASETS[name].std == pytest.approx(std, abs=3e-4)


def test_specs_are_frozen():
    with pytest.raises(TypeError):
        DATASETS["mnist"] = DATASETS["cifar10"]  # type: ignore[index]
    with pytest.raises(AttributeError):
        DATASETS["cifar10"].num_classes = 11  # type: ignore[misc]


def test_get_dataset_by_name_or_spec():
    spec = get_dataset("cifar100")
    assert spec.name == "cifar100" and get_dataset(spec) is spec
    custom = DatasetSpec("tiny", 2, 8, (0.5,) * 3, (0.25,) * 3, crop_padding=1)
    assert get_dataset(custom) is custom


@pytest.mark.parametrize("name", ["mnist", "", "cifar-10", "imagenet-16"])
def test_unknown_dataset_is_one_line_listing_valid_names(name):
    with pytest.raises(UnknownNameError) as info:
        get_dataset(name)
    message = str(info.value)
    assert "\n" not in message and repr(name) in message
    assert "cifar10, cifar100, ImageNet16-120" in message
    assert isinstance(info.value, UserError) and isinstance(info.value, KeyError)


def test_unknown_dataset_suggests_a_close_name():
    with pytest.raises(UnknownNameError, match="did you mean 'ImageNet16-120'"):
        get_dataset("ImageNet16_120")


def test_aliases_and_cifar10_valid():
    assert get_dataset("imagenet16-120").name == "ImageNet16-120"
    assert get_dataset("CIFAR100").name == "cifar100"
    assert get_dataset("cifar10-valid").name == "cifar10"
