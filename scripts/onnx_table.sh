#!/usr/bin/env bash
# Regenerates docs/onnx.md: ONNX's backend test suite (Debian's libonnx-testdata) through
# th::onnx, by tests/onnx/suite.cpp. Its pass counts are ctest's floor (onnx_backend_suite
# fails when a category passes fewer), so rerun this after adding an operator.
#   bash scripts/onnx_table.sh   (build first: cmake --build build)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/tests/onnx/onnx_suite ] || { echo "onnx_table: build/tests/onnx/onnx_suite not built (cmake --build build; needs libonnx-dev)"; exit 2; }
table="$(mktemp)" saved="$(mktemp)"
OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE THETA_FLAGS=native=off build/tests/onnx/onnx_suite --markdown "$table"
OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE THETA_FLAGS=native=off build/tests/onnx/onnx_suite --roundtrip --markdown "$saved"
{
  cat <<'HEAD'
# ONNX: what theta imports, judged by ONNX's own backend test suite

`th::onnx::load` (API.md section 17, `include/theta/onnx.hpp`) against every model of Debian's
`libonnx-testdata` (ONNX 1.12's backend test data, `/usr/share/libonnx-testdata/data`): each
model run on its `test_data_set_*` inputs and compared with the reference outputs (rtol 1e-3,
atol 1e-7; integers and booleans exactly), each test in its own process with a time limit.
"unsupported" is a `th::Error` at load naming the node, its op type and what is missing;
"wrong" would be a result outside the tolerance. A graph input becomes a placeholder with the
sizes the file declares (`dim_value`; named dimensions stay open), and a call with other sizes
is a `th::ShapeError` naming the input. A model whose shape, axes or pads are the *values* of
graph inputs runs with those inputs known at load ("with inputs bound"), since theta builds
the graph from them; the others run as frozen functions on placeholders.
Regenerate: `bash scripts/onnx_table.sh`; ctest's `onnx_backend_suite` fails when a category
passes fewer tests than this table says.

```cpp
th::onnx::Model m = th::onnx::load("model.onnx");     // placeholders, shared variables, outputs
th::Function predict = th::function(m.inputs, m.outputs);
th::Tensor loss = th::mean(th::sqr(m.outputs[0] - target));   // any theta expression on top
th::Updates ups;
for (const th::Shared& p : m.parameters) ups.push_back({p, p - 0.01 * th::grad(loss, p)});
th::Function step = th::function({m.inputs[0], target}, loss, ups);  // fine-tuning
```

(`tests/onnx/test_onnx.cpp` does this with PyTorch's Conv2d and Linear test models.) From
the shell: `theta run model.onnx x.npy -o out.npz`, `theta info model.onnx`, `theta print
model.onnx` (the frozen program's steps), `theta convert model.onnx model.theta`. Each
operator reads the attributes it knows and refuses the others by name. Operators that need a
value when the graph is built (`Split` into equal parts, a `Slice`'s bounds, axes) take it
from an initializer, a `Constant` or sizes known at load, or fail to load with a message
saying so; `Reshape`, `Expand` and `ConstantOfShape` also take sizes computed in the graph
(a `Shape`'s output) and read them when the function runs. `If` becomes `th::ifelse` (frozen,
only the branch taken runs), `Scan` (opset 9 on) and `Loop` (a trip count known at load, a
condition that stays true) become `th::scan` over the body, converted once; bodies read the
outer graph's values. A sequence is a list of tensors known when the model loads
(`SequenceConstruct`, `SequenceInsert`/`SequenceErase` at positions known at load,
`SplitToSequence`, then `SequenceAt`, `SequenceLength`, `ConcatFromSequence`): theta's graph
sees the tensors themselves, so they differentiate; a sequence as a graph input or output, or
carried by a loop, is not supported. `Gradient` (domain `ai.onnx.preview.training`) is
`th::grad` of y's sum. Strings are theta's string tensors (`DType::string`, host-only text):
`StringNormalizer` (ASCII case) and `Cast` to and from numbers take them, any other operator
refuses them by name. float16, bfloat16, uint64 and optionals are not supported (theta has
bool, int32, int64, float32, float64 and string; narrower integers are widened to int32, so
arithmetic that would wrap around in uint8 or int16 does not wrap here).

Composed in the importer, not yet theta operations of their own: 3-d convolutions (2-d ones
over depth slices), pooling of rank 3 or with dilation or `auto_pad` SAME (one strided view
per window cell), LRN, the losses, `Resize`/`Upsample` (per resized axis a sum of gathers
times weights: nearest, linear and cubic taps, every coordinate transformation mode, as
ONNX's reference computes them), `GatherND`/`ScatterND` (data's leading axes flattened,
then `take`/`put_along_axis`), `RNN`/`GRU`/`LSTM` (unrolled over the sequence: default
activations, every direction and layout, peepholes, no `clip`), `ConvTranspose` with
asymmetric pads, `output_shape` or `auto_pad` SAME (the full output cut or zero-padded to
ONNX's span), `BatchNormalization` in training mode, `MeanVarianceNormalization`,
`ReverseSequence` (one gather), `GridSample` (2-d; per tap one gather of the flattened image
times its weight: bilinear, nearest and bicubic, every padding mode, differentiable in X and
the grid), `DFT` (products with cosine and sine matrices of the length known at load, in
float64); these need the input's sizes when the model loads (declared
sizes do) and are slower than a kernel would be. All of them differentiate. Floor, Ceil, Round and Mod go through a cast to int64
(exact below 2^52, where every float is an integer anyway). `NonZero`, `Compress`'s condition
and the window functions' sizes must be known at load (their output sizes depend on them).
Quantized 8-bit values (`QuantizeLinear`, `DequantizeLinear`, `DynamicQuantizeLinear`,
`MatMulInteger`, `ConvInteger`, `QLinearMatMul`, `QLinearConv`) are int32 in theta, computed
exactly (products in float64) and saturated to the range of the zero point's type, which
the file must state (an initializer, a `Constant`, a `Cast` or a graph input).

HEAD
  cat <<'SAVED'
## ONNX out: the same models through `th::onnx::save`

`th::onnx::save(path, f)` writes a frozen function as an ONNX model (opset 14-17, IR version 8,
accepted by `onnx::checker::check_model`, which save runs before writing). Below, every test
model that runs as a frozen function is saved, loaded back with `th::onnx::load_function` and
run again on its inputs (`onnx_suite --roundtrip`; ctest's `onnx_roundtrip_suite` fails below
these counts). `th::ifelse` is written as `If` (each branch a subgraph), `th::scan` as `Scan`
over its sequences or as `Loop` when it has none (the body a subgraph; stacked outputs, states
and non-sequences as ONNX carries them), `sort`/`argsort` as `TopK` over the whole axis. A
theta op without an ONNX counterpart (random draws, decompositions such as slogdet,
gradients' own ops) is a `th::Error` naming the op and its step.

SAVED
  cat "$saved"
  echo
  echo "## ONNX in: the backend test suite"
  echo
  cat "$table"
} > docs/onnx.md
rm -f "$table" "$saved"
echo "onnx_table: wrote docs/onnx.md"
