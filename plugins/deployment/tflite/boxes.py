"""A detector's .tflite returns final detections: the box selection in the graph, after the model.

The Keras model of a ``detection`` run gives per-anchor rel_xyxy boxes and class scores
``(N, anchors, 4 + C)``. The SavedModel the converter reads adds what the task's ``deployed`` does
in numpy: each anchor's best class, then ``tf.raw_ops.NonMaxSuppressionV5`` with
``pad_to_max_output_size`` (LiteRT's builtin NON_MAX_SUPPRESSION_V5, one subgraph, fixed-size
outputs; ``tf.image.non_max_suppression_padded`` lowers to WHILE/IF subgraphs, which MediaPipe's
ObjectDetector refuses). Batch 1 (the op takes one image). Four outputs, in MediaPipe's
ObjectDetector order (the TF Object Detection API's names sort so): ``detection_boxes`` [1, K, 4]
as ymin, xmin, ymax, xmax (relative), ``detection_classes`` [1, K], ``detection_scores`` [1, K],
``num_detections`` [1], all float32; rows past the count are zero with class -1.
"""

from plugins.tasks._detection_metrics import IOU_THRESHOLD, MAX_DETECTIONS, SCORE_THRESHOLD

OUTPUTS = ("detection_boxes", "detection_classes", "detection_scores", "num_detections")


def is_detector(dataset):
    """Whether a run's dataset is of a task whose outputs are boxes (its files select them)."""
    from core import task_named

    task = task_named(getattr(dataset, "task", "") or "", optional=True)
    return task is not None and task.device == "boxes"


def write_saved_model(model, path):
    """A SavedModel at ``path`` of ``model`` (batch 1) followed by the box selection."""
    import keras
    import tensorflow as tf

    (tensor,) = model.inputs
    spec = tf.TensorSpec([1, *tensor.shape[1:]], tensor.dtype, name="image")

    def serve(image):
        anchors = model(image, training=False)[0]  # (A, 4 + C)
        anchors = tf.cast(anchors, tf.float32)
        boxes = tf.gather(anchors[:, :4], [1, 0, 3, 2], axis=1)  # xyxy → yxyx
        scores = tf.reduce_max(anchors[:, 4:], axis=1)
        classes = tf.cast(tf.argmax(anchors[:, 4:], axis=1), tf.float32)
        selected, kept_scores, count = tf.raw_ops.NonMaxSuppressionV5(
            boxes=boxes,
            scores=scores,
            max_output_size=MAX_DETECTIONS,
            iou_threshold=IOU_THRESHOLD,
            score_threshold=SCORE_THRESHOLD,
            soft_nms_sigma=0.0,
            pad_to_max_output_size=True,
        )
        real = tf.range(MAX_DETECTIONS) < count
        kept_boxes = tf.where(real[:, None], tf.gather(boxes, selected), 0.0)
        kept_classes = tf.where(real, tf.gather(classes, selected), -1.0)
        return {
            "detection_boxes": kept_boxes[None],
            "detection_classes": kept_classes[None],
            "detection_scores": tf.where(real, kept_scores, 0.0)[None],
            "num_detections": tf.cast(count, tf.float32)[None],
        }

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", serve, input_signature=[spec])
    archive.write_out(str(path), verbose=False)
