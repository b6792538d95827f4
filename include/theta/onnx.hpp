// ONNX models in and out (API.md section 17): an .onnx file becomes a graph like any other, whose
// outputs take part in new expressions, differentiate with respect to its parameters (the
// initializers, as shared variables) and freeze into functions. Built when theta found
// Debian's libonnx-dev and libprotobuf-dev (THETA_ONNX=AUTO|ON|OFF; THETA_HAS_ONNX is then
// defined for the code that uses theta). docs/onnx.md lists the operators and what ONNX's
// own backend test suite says of them.
#pragma once
#include <string>
#include <vector>

#include "function.hpp"
#include "tensor.hpp"

namespace th::onnx {

/// An imported graph.
struct Model {
  std::vector<Tensor> inputs;      ///< placeholders for the graph's inputs that are not initializers, in order
  std::vector<Tensor> outputs;     ///< the graph's outputs, symbolic, in order
  std::vector<Shared> parameters;  ///< the initializers, as shared variables named as in the file
  std::vector<std::string> input_names;   ///< the graph's input names (bound ones too), in order
  std::vector<std::string> output_names;  ///< the graph's output names, in order
};

/// Reads an .onnx file (opsets 6-17). th::IOError for a file that is not a readable model (bad
/// protobuf, sizes beyond their data, external data outside the model's folder); th::Error
/// naming the node, its op type and the attribute for what theta does not support.
Model load(const std::string& path);

/// th::function(m.inputs, m.outputs) of load(path).
Function load_function(const std::string& path);

/// Writes frozen function `f` as an ONNX model of `opset` (14-17; IR version 8, which
/// onnx 1.12's checker takes): its inputs as graph inputs of symbolic sizes, its constants
/// and the current values of its shared variables as initializers (named as the variables;
/// updates are not part of ONNX), its outputs as output_0, output_1, ... Fused steps are
/// written as the ops they fused. An op without an ONNX counterpart (random draws,
/// decompositions, scan, gradients' own ops) is a th::Error naming it and its step, and
/// nothing is written; th::IOError when the file cannot be written.
void save(const std::string& path, const Function& f, int opset = 17);

}  // namespace th::onnx
