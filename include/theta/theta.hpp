// theta: define, differentiate, freeze and run tensor expressions. The one public header.
#pragma once
#include "autodiff.hpp"
#include "config.hpp"
#include "device.hpp"
#include "dtype.hpp"
#include "error.hpp"
#include "function.hpp"
#include "io.hpp"
#include "ops.hpp"
#include "tensor.hpp"
#include "xtensor.hpp"
