// theta: define, differentiate, freeze and run tensor expressions. The one public header.
#pragma once
#include "autodiff.hpp"
#include "config.hpp"
#include "control.hpp"
#include "device.hpp"
#include "dist.hpp"
#include "dtype.hpp"
#include "error.hpp"
#include "function.hpp"
#include "io.hpp"
#include "linalg.hpp"
#include "nn.hpp"
#ifdef THETA_HAS_ONNX
#include "onnx.hpp"
#endif
#include "ops.hpp"
#include "optim.hpp"
#include "random.hpp"
#include "tensor.hpp"
#include "xtensor.hpp"

/// theta's public API: tensors and their operations (eager, recorded on a tape), gradients
/// (th::grad), placeholders, shared variables and frozen functions (th::function), neural
/// network operations, optimizers, random streams, scan, linear algebra, files, devices and
/// distributed training. The user guide: docs/guide.md.
namespace th {}
