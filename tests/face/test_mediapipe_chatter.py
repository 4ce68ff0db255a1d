"""mediapipe's C++ start-up lines are dropped; anything else written to fd 2 meanwhile gets through."""
import os

from face import landmarks


def test_chatter_is_dropped_and_the_rest_passed_on(capfd):
    with landmarks._without_chatter():
        os.write(2, b"W0000 00:00:1.5  7 inference_feedback_manager.cc:114] Feedback manager requires ...\n")
        os.write(2, b"a real warning\n")
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "a real warning\nafter\n"
