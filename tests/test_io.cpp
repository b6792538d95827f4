// .npy/.npz: round trips for every dtype, hostile files give th::IOError, and files that
// Debian's numpy writes and reads (when /usr/bin/python3 has numpy).
#define BOOST_TEST_MODULE io
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "check.hpp"

using th::Tensor;

namespace {
std::string tmp(const std::string& name) { return "theta_io_test_" + name; }
void write_bytes(const std::string& path, const std::string& b) { std::ofstream(path, std::ios::binary) << b; }
std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
bool same(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && a.to_vector<double>() == b.to_vector<double>();
}
struct has_numpy {
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) {
    bool ok = std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0;
    boost::test_tools::assertion_result r(ok);
    r.message() << "python3-numpy is not installed";
    return r;
  }
};
}  // namespace

BOOST_AUTO_TEST_CASE(npy_round_trips) {
  std::vector<Tensor> ts{th::random::normal({3, 4}, 1),
                         th::random::normal({2, 3, 2}, 2, th::DType::float32),
                         th::arange(7),
                         th::tensor({1, -2}, th::DType::int32),
                         th::tensor({1, 2}) > 1.5,
                         th::tensor(3.25),
                         th::zeros({0, 3}),
                         th::random::normal({4, 3}, 3).T()};  // a strided view is written in C order
  for (std::size_t i = 0; i < ts.size(); ++i) {
    th::save_npy(tmp("rt.npy"), ts[i]);
    BOOST_TEST(same(th::load_npy(tmp("rt.npy")), ts[i]), "tensor " << i);
  }
  std::map<std::string, Tensor> named{{"w", ts[0]}, {"ids", ts[2]}, {"mask", ts[4]}};
  th::save_npz(tmp("rt.npz"), named);
  auto back = th::load_npz(tmp("rt.npz"));
  BOOST_TEST(back.size() == 3u);
  for (auto& [k, v] : named) BOOST_TEST(same(back.at(k), v), k);
}

BOOST_AUTO_TEST_CASE(hostile_files_give_io_errors) {
  th::save_npy(tmp("ok.npy"), th::random::normal({8, 8}, 1));
  const std::string good = read_bytes(tmp("ok.npy"));
  auto expect_io = [](const std::string& bytes, const std::string& what) {
    write_bytes(tmp("bad.npy"), bytes);
    BOOST_CHECK_THROW(th::load_npy(tmp("bad.npy")), th::IOError);
    (void)what;
  };
  expect_io(good.substr(0, good.size() - 1), "truncated data");
  expect_io(good.substr(0, 20), "truncated header");
  expect_io("", "empty");
  expect_io("not a numpy file at all", "bad magic");
  std::string huge = good;
  auto p = huge.find("(8, 8)");
  huge.replace(p, 6, "(99999999999, 99999999999)");
  expect_io(huge, "a shape far larger than the data (no huge allocation)");
  std::string neg = good;
  neg.replace(neg.find("(8, 8)"), 6, "(-8, 8)");
  expect_io(neg, "negative dimension");
  std::string dt = good;
  dt.replace(dt.find("<f8"), 3, ">f8");
  expect_io(dt, "big-endian");
  BOOST_CHECK_THROW(th::load_npy(tmp("does_not_exist.npy")), th::IOError);
  th::save_npz(tmp("ok.npz"), {{"a", th::ones({4})}});
  std::string z = read_bytes(tmp("ok.npz"));
  write_bytes(tmp("bad.npz"), z.substr(0, z.size() / 2));
  BOOST_CHECK_THROW(th::load_npz(tmp("bad.npz")), th::IOError);
  std::string flipped = z;
  flipped[60] = char(flipped[60] ^ 0x5a);  // inside the entry's data: checksum mismatch
  write_bytes(tmp("bad.npz"), flipped);
  BOOST_CHECK_THROW(th::load_npz(tmp("bad.npz")), th::IOError);
  // A bool array whose bytes are not 0/1 (found by fuzz_npy): read as numpy does, nonzero is True.
  th::save_npy(tmp("b.npy"), th::tensor({1.0, 0.0, 1.0}) > 0.5);
  std::string b = read_bytes(tmp("b.npy"));
  b[b.size() - 1] = 39;
  write_bytes(tmp("b.npy"), b);
  th::Tensor t = th::load_npy(tmp("b.npy"));
  BOOST_TEST(check::vals(th::cast(t, th::DType::int64)) == (std::vector<double>{1, 0, 1}));
}

BOOST_AUTO_TEST_CASE(numpy_interop, *boost::unit_test::precondition(has_numpy())) {
  th::save_npy(tmp("from_theta.npy"), th::tensor({{1.5, 2}, {3, 4}}));
  th::save_npz(tmp("from_theta.npz"), {{"a", th::arange(3)}, {"b", th::tensor({1, 2}, th::DType::float32)}});
  const std::string py =
      "/usr/bin/python3 -c \""
      "import numpy as np;"
      "a = np.load('" + tmp("from_theta.npy") + "'); assert a.dtype == np.float64 and a.tolist() == [[1.5, 2], [3, 4]];"
      "z = np.load('" + tmp("from_theta.npz") + "'); assert z['a'].tolist() == [0, 1, 2] and z['b'].dtype == np.float32;"
      "np.save('" + tmp("from_numpy.npy") + "', np.arange(6, dtype=np.int32).reshape(2, 3));"
      "np.save('" + tmp("fortran.npy") + "', np.asfortranarray(np.arange(6.).reshape(2, 3)));"
      "np.savez('" + tmp("from_numpy.npz") + "', x=np.array([True, False]), y=np.float32(2.5));"
      "np.savez_compressed('" + tmp("compressed.npz") + "', x=np.ones(3))\"";
  BOOST_TEST_REQUIRE(std::system(py.c_str()) == 0);
  BOOST_TEST(same(th::load_npy(tmp("from_numpy.npy")), th::reshape(th::arange(0, 6, 1, th::DType::int32), {2, 3})));
  BOOST_TEST(th::load_npy(tmp("fortran.npy")).to_vector() == (std::vector<double>{0, 1, 2, 3, 4, 5}));
  auto z = th::load_npz(tmp("from_numpy.npz"));
  BOOST_TEST(z.at("x").to_vector<bool>() == (std::vector<bool>{true, false}));
  BOOST_TEST(z.at("y").item() == 2.5);
  BOOST_TEST(z.at("y").dtype() == th::DType::float32);
  BOOST_CHECK_THROW(th::load_npz(tmp("compressed.npz")), th::IOError);
}
