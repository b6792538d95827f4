// th::onnx's internals: tensors and graphs of ONNX's protobuf classes to theta's (import.cpp,
// graph.cpp).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "theta/onnx.hpp"

namespace onnx {
class TensorProto;
class GraphProto;
}  // namespace onnx

namespace th::onnx::detail {

/// The opset version of each operator domain the model imports ("" is ai.onnx).
using Opsets = std::map<std::string, std::int64_t>;

/// theta's dtype for an ONNX element type (narrower integers widened to int32, uint32 to
/// int64); th::TypeError naming `where` for the others (float16, strings, ...).
DType dtype_of_onnx(int onnx_type, const std::string& where);

/// A TensorProto's value (raw or typed fields, or external data inside model_dir);
/// th::IOError when its sizes disagree with its data. With `owner` == &t (a message the
/// caller lets go of), large raw data of theta's layout becomes the tensor's buffer as it is:
/// released from the message, not copied.
Tensor tensor_of(const ::onnx::TensorProto& t, const std::string& where, const std::string& model_dir,
                 ::onnx::TensorProto* owner = nullptr);

/// A serialized TensorProto file (the backend test suite's input_N.pb / output_N.pb).
Tensor read_tensor_file(const std::string& path);

/// The graph as theta's: graph inputs named in `bound` become those concrete tensors instead
/// of placeholders (the test suite runs models whose shape inputs it knows).
Model import_graph(::onnx::GraphProto& g, const Opsets& opsets, const std::string& model_dir,
                   const std::map<std::string, Tensor>& bound, const std::string& path);

/// The names of the graph's inputs that are not initializers, in order.
std::vector<std::string> graph_input_names(const std::string& path);

/// load(path) with `bound` inputs (see import_graph).
Model import_model(const std::string& path, const std::map<std::string, Tensor>& bound);

}  // namespace th::onnx::detail
