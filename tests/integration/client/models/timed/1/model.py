"""Y = X after a short sleep; SPAN = when this request ran, [start, end] on the monotonic clock.

CLOCK_MONOTONIC is one clock for every process of the machine, so the spans of requests that
ran on different instances (stub processes) can be compared: they show which ran at once.
"""

import time

import numpy as np
import triton_python_backend_utils as pb_utils

SLEEP_S = 0.3


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "X").as_numpy()
            started = time.monotonic()
            time.sleep(SLEEP_S)
            span = np.tile(np.array([started, time.monotonic()], np.float64), (x.shape[0], 1))
            responses.append(
                pb_utils.InferenceResponse(
                    output_tensors=[pb_utils.Tensor("Y", x), pb_utils.Tensor("SPAN", span)]
                )
            )
        return responses
