"""What the MediaPipe client computes without MediaPipe: LiteRT's boxes in MediaPipe's whole pixels."""

import numpy as np
import pytest

from tflite.mediapipe_client import padded, pixel_boxes


def test_boxes_in_mediapipes_pixels():
    # Measured: LiteRT's box (ymin, xmin, ymax, xmax) 12.98, 14.97, 21.54, 26.0 of a 32x32 image came
    # back from MediaPipe's ObjectDetector as origin (14, 12), 11 wide, 8 high: each truncated.
    rows = np.array([[[12.98, 14.97, 21.54, 26.0, 2, 0.47], [-0.3, 30.5, 8.0, 33.0, 0, 0.3]]], np.float32)
    rows[..., :4] /= 32
    got = pixel_boxes(rows, 32, 32)
    assert got[0, 0, :4] * 32 == pytest.approx([12, 14, 20, 25])
    assert got[0, 1, :4] * 32 == pytest.approx([0, 30, 8, 32])  # kept within the image
    assert (got[..., 4:] == rows[..., 4:]).all()


def test_padded_as_litert_pads():
    out = padded([np.array([[0.1, 0.2, 0.3, 0.4, 1, 0.9]]), np.zeros((0, 6))], 3)
    assert out.shape == (2, 3, 6)
    assert out[0, 0, 4] == 1 and (out[0, 1:, 4] == -1).all() and (out[1, :, 4] == -1).all()
    assert (out[1, :, 5] == 0).all()
