"""What the IR lacks, for a node no rule of a frontend places (the tail of the one-line refusal)."""

from __future__ import annotations

_BY_OP = {
    "matmul": "the IR has no attention",
    "batch_matmul": "the IR has no attention",
    "einsum": "the IR has no attention",
    "softmax": "the IR has no softmax (no attention, no classifier probabilities)",
    "layernormalization": "the IR has no layer normalisation",
    "mean_variance_normalization": "the IR has no layer normalisation",
    "maxpool": "the IR has no max pooling",
    "max_pool_2d": "the IR has no max pooling",
    "globalmaxpool": "the IR has no max pooling",
    "lstm": "the IR has no recurrent layers",
    "gru": "the IR has no recurrent layers",
    "unidirectional_sequence_lstm": "the IR has no recurrent layers",
    "convtranspose": "the IR has no transposed convolution",
    "transpose_conv": "the IR has no transposed convolution",
    "conv_3d": "the IR has no 3-D convolution",
    "gelu": "the IR has no GELU activation",
    "erf": "the IR has no GELU activation",
    "tanh": "the IR has no tanh activation",
    "leakyrelu": "the IR has no leaky ReLU",
    "leaky_relu": "the IR has no leaky ReLU",
    "prelu": "the IR has no PReLU",
    "elu": "the IR has no ELU",
    "instancenormalization": "the IR has no instance normalisation",
    "gather": "the IR has no gather (embeddings, indexing)",
    "split": "the IR has no split (a grouped convolution written as SPLIT is not recognised)",
    "slice": "the IR has no slicing",
    "strided_slice": "the IR has no slicing",
    "pow": "the IR has no power",
    "sqrt": "the IR has no square root",
    "div": "the IR has no division (only x/6 inside a hard activation)",
    "sub": "the IR has no subtraction",
    "nonmaxsuppression": "the IR has no box decoding or non-maximum suppression",
    "topk": "the IR has no box decoding or non-maximum suppression",
    "custom": "the IR has no custom operators",
}


def lacks(op: str, shapes=()) -> str:
    """The reason a node of type ``op`` with input ``shapes`` cannot be placed."""
    key = op.lower()
    if key in ("gemm", "fully_connected") and shapes and len(shapes[0]) > 2:
        return "the IR has no attention (a linear layer on a sequence)"
    if key in _BY_OP:
        return _BY_OP[key]
    if key in ("add", "mul"):
        return (
            "the IR has no such elementwise operation here (a residual add, an SE gate or a hard activation)"
        )
    if key in ("reshape", "transpose", "flatten", "squeeze", "unsqueeze"):
        return "the IR has no such layout change (only flatten, channel shuffle and the SSD anchors layout)"
    if key in ("conv", "conv_2d", "depthwise_conv_2d"):
        return "the IR has no such convolution (odd square kernels, stride 1 or 2, symmetric 'same' padding)"
    return f"the IR has no {op} operation"
