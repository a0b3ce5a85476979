"""Several backends per family: slots, figure names, and the default stack a run measures with."""
from __future__ import annotations

from fsbench.metrics.definitions import figure_key, figure_metric, figure_slot, figures, slot
from fsbench.scoring import DEFAULT_BACKENDS, EXTRA_BACKENDS, chosen_backends


def test_default_stack_reports_arcface_beside_dlib_and_mediapipe_beside_the_independent_pose() -> None:
    chosen = chosen_backends(set(DEFAULT_BACKENDS))
    assert chosen == {"identity": "dlib", "identity@arcface-mbf": "arcface-mbf", "pose": "whenet",
                      "pose@mediapipe-pose": "mediapipe-pose", "expression": "mediapipe-blendshapes",
                      "distribution": "mobilenet-v2"}
    # MediaPipe's pose reading comes before the blendshapes that reuse it
    assert list(chosen).index("pose@mediapipe-pose") < list(chosen).index("expression")
    assert chosen_backends({"identity"}) == {"identity": "dlib", "identity@arcface-mbf": "arcface-mbf"}


def test_a_primary_override_keeps_the_further_backends_but_never_twice() -> None:
    assert chosen_backends({"pose"}, {"pose": "hopenet"}) == {"pose": "hopenet", "pose@mediapipe-pose": "mediapipe-pose"}
    assert chosen_backends({"pose"}, {"pose": "mediapipe-pose"}) == {"pose": "mediapipe-pose"}
    assert all(family in DEFAULT_BACKENDS for family in EXTRA_BACKENDS)


def test_figure_names_round_trip() -> None:
    assert figure_key("pose_error", "pose") == "pose_error"
    assert figure_key("pose_error", slot("pose", "mediapipe-pose")) == "pose_error@mediapipe-pose"
    assert figure_metric("id_top1_frame@arcface-mbf").name == "id_top1_frame"
    assert figure_slot("id_top1_frame@arcface-mbf") == "identity@arcface-mbf"
    assert figure_slot("fd") == "distribution"


def test_figures_put_each_metric_of_both_backends_side_by_side() -> None:
    slots = ["pose@mediapipe-pose", "identity", "identity@arcface-mbf", "pose"]
    assert figures(["id_cosine", "id_top1_frame", "pose_error", "fd"], slots) == [
        "id_cosine", "id_cosine@arcface-mbf", "id_top1_frame", "id_top1_frame@arcface-mbf", "pose_error",
        "pose_error@mediapipe-pose"]  # fd: no distribution slot, so no figure
