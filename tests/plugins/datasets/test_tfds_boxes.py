"""``tfds`` with ``boxes``: a TFDS builder with ``objects/bbox`` (BBoxFeature) and ``objects/label``
prepared here into a ``data_dir`` (offline), then read through the plugin in one TensorFlow
process: the boxes cover the drawn shapes in every streamed batch, whatever order the batches are
asked in; bad boxes counted; bad options one-line errors."""

import json
from pathlib import Path

from conftest import run_python

from core import UsageError
from plugins.datasets.tfds import load

HERE = Path(__file__).parent

JOB = """
import json, sys
import numpy as np
import tensorflow_datasets as tfds

sys.path.insert(0, sys.argv[3])
from box_scenes import NAMES, coverage, scene

class KerastackBoxes(tfds.core.GeneratorBasedBuilder):
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        objects = tfds.features.Sequence(
            {"bbox": tfds.features.BBoxFeature(), "label": tfds.features.ClassLabel(names=list(NAMES))}
        )
        features = tfds.features.FeaturesDict({"image": tfds.features.Image(shape=(None, None, 3)), "objects": objects})
        return tfds.core.DatasetInfo(builder=self, features=features)

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(24)}

    def _generate_examples(self, n):
        rng = np.random.default_rng(0)
        for i in range(n):
            image, boxes = scene(rng, 40, 30)
            bbox = [tfds.features.BBox(y0 / 30, x0 / 40, y1 / 30, x1 / 40) for _, x0, y0, x1, y1 in boxes]
            labels = [c for c, *_ in boxes]
            if i == 5:  # a box of zero height: dropped with a warning
                bbox.append(tfds.features.BBox(0.5, 0.1, 0.5, 0.3))
                labels.append(1)
            yield i, {"image": np.asarray(image), "objects": {"bbox": bbox, "label": labels}}

data_dir = sys.argv[2]
KerastackBoxes(data_dir=data_dir).download_and_prepare()

from plugins.datasets.tfds import load
data = load("kerastack_boxes", data_dir=data_dir, boxes="objects/bbox", size=40, batch_size=8, validation=0.25, test=0.25)
facts = {"task": data.task, "class_names": data.class_names, "batches": [len(s) for s in (data.train, data.validation, data.test)]}
data.train.on_epoch_begin()
epoch = [data.train[i] for i in (1, 0)]  # Keras asks in any order: each is the next of the pass
facts["train"] = [[list(x.shape), list(y.shape), str(y.dtype), coverage(x, y)] for x, y in epoch]
facts["test"] = [coverage(*data.test[i]) for i in range(len(data.test))]
facts["boxes"] = int(sum((y[..., 4] >= 0).sum() for _, y in epoch))
json.dump(facts, open(sys.argv[1] + "/facts.json", "w"))
"""


def test_box_features_stream_with_their_images(tmp_path):
    proc = run_python(JOB, tmp_path, tmp_path / "tfds", HERE, env={"KERAS_BACKEND": "tensorflow"})
    facts = json.loads((tmp_path / "facts.json").read_text())
    assert facts["task"] == "detection" and facts["class_names"] == ["red", "blue"]
    assert facts["batches"] == [2, 1, 1]
    assert [shape for shape, *_ in facts["train"]] == [[8, 40, 40, 3], [4, 40, 40, 3]]  # 12 examples in order
    for shape, target, dtype, covered in facts["train"]:
        assert target == [shape[0], 3, 5] and dtype == "float32" and covered > 0.97
    assert all(c > 0.97 for c in facts["test"]) and facts["boxes"] >= 16
    assert (
        "tfds: warning: 1 of " in proc.stderr
        and "boxes have zero or negative area: dropped (the first: " in proc.stderr
    )
    assert "kerastack_boxes train[0:12] example " in proc.stderr


def test_bad_options():
    import pytest

    with pytest.raises(
        UsageError, match="option boxes='objects/bbox' detects objects in images; drop mask='segmentation_mask'"
    ):
        load("kerastack_boxes", boxes="objects/bbox", mask="segmentation_mask", classes="a,b")
    with pytest.raises(UsageError, match="option max_boxes=-2"):
        load("kerastack_boxes", boxes="objects/bbox", max_boxes=-2)
