// idx files (th::load_idx): every value type, plain and gzip-compressed, against the bytes
// written here; truncated, corrupt and oversized files as th::IOError; and Debian's
// Fashion-MNIST files when dataset-fashion-mnist is installed.
#define BOOST_TEST_MODULE idx
#include <zlib.h>

#include <cstdio>
#include <fstream>

#include "check.hpp"
#include "io/idx.hpp"

namespace {

std::string header(unsigned char type, const std::vector<std::uint32_t>& dims) {
  std::string h{'\0', '\0', char(type), char(dims.size())};
  for (auto d : dims)
    for (int s = 24; s >= 0; s -= 8) h += char((d >> s) & 0xff);
  return h;
}

std::string gzip(const std::string& raw) {
  const std::string path = "/tmp/theta_test_idx_" + std::to_string(::getpid()) + ".gz";
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, raw.data(), unsigned(raw.size()));
  gzclose(f);
  std::ifstream in(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::remove(path.c_str());
  return s;
}

std::string io_error(const std::string& bytes) {
  return check::message_of<th::IOError>([&] { th::detail::parse_idx(bytes, "test"); });
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_value_type_plain_and_gzip) {
  // uint8 2x3
  std::string u8 = header(0x08, {2, 3}) + std::string("\x00\x01\x7f\x80\xfe\xff", 6);
  for (const std::string& bytes : {u8, gzip(u8)}) {
    const th::Tensor t = th::detail::parse_idx(bytes, "u8");
    BOOST_TEST((t.dtype() == th::DType::int64));
    BOOST_TEST((t.shape() == th::Shape{2, 3}));
    BOOST_TEST(t.to_vector<std::int64_t>() == (std::vector<std::int64_t>{0, 1, 127, 128, 254, 255}), boost::test_tools::per_element());
  }
  const th::Tensor i8 = th::detail::parse_idx(header(0x09, {2}) + std::string("\xff\x05", 2), "i8");
  BOOST_TEST(i8.to_vector<std::int64_t>() == (std::vector<std::int64_t>{-1, 5}), boost::test_tools::per_element());
  const th::Tensor i16 = th::detail::parse_idx(header(0x0B, {1}) + std::string("\xfe\xdc", 2), "i16");
  BOOST_TEST(i16.item<std::int64_t>() == std::int64_t(std::int16_t(0xfedc)));
  const th::Tensor i32 = th::detail::parse_idx(header(0x0C, {1}) + std::string("\x80\x00\x00\x01", 4), "i32");
  BOOST_TEST(i32.item<std::int64_t>() == std::int64_t(std::int32_t(0x80000001u)));
  const th::Tensor f32 = th::detail::parse_idx(header(0x0D, {1}) + std::string("\x3f\xc0\x00\x00", 4), "f32");
  BOOST_TEST((f32.dtype() == th::DType::float32));
  BOOST_TEST(f32.item<double>() == 1.5);
  const th::Tensor f64 = th::detail::parse_idx(header(0x0E, {}) + std::string("\xc0\x09\x21\xfb\x54\x44\x2d\x18", 8), "f64");
  BOOST_TEST((f64.shape() == th::Shape{}));
  BOOST_TEST(f64.item<double>() == -3.141592653589793);
  // through a file, as users call it
  const std::string path = "/tmp/theta_test_idx_" + std::to_string(::getpid()) + ".idx.gz";
  std::ofstream(path, std::ios::binary) << gzip(u8);
  BOOST_TEST((th::load_idx(path).shape() == th::Shape{2, 3}));
  std::remove(path.c_str());
  BOOST_TEST(check::has(check::message_of<th::IOError>([] { th::load_idx("/nonexistent/x.idx"); }), "cannot open"));
}

BOOST_AUTO_TEST_CASE(bad_files_are_io_errors) {
  const std::string ok = header(0x08, {2, 3}) + std::string(6, '\x01');
  BOOST_TEST(check::has(io_error(""), "truncated header"));
  BOOST_TEST(check::has(io_error(std::string("\x01\x00\x08\x01", 4)), "not an idx file"));
  BOOST_TEST(check::has(io_error(header(0x07, {1}) + "x"), "unknown value type 0x07"));
  BOOST_TEST(check::has(io_error(header(0x08, {2, 3}).substr(0, 9)), "truncated header"));
  BOOST_TEST(check::has(io_error(ok.substr(0, ok.size() - 1)), "truncated: (2, 3) needs 6 bytes of values, the file has 5"));
  BOOST_TEST(check::has(io_error(ok + "z"), "data after the 6 values"));
  BOOST_TEST(check::has(io_error(gzip(ok + "z")), "data after the 6 values"));
  const std::string gz = gzip(ok);
  BOOST_TEST(check::has(io_error(gz.substr(0, gz.size() - 12)), "gzip"));
  std::string flipped = gz;
  flipped[gz.size() / 2] ^= 0x55;
  const std::string m = io_error(flipped);
  BOOST_TEST((check::has(m, "gzip") || check::has(m, "truncated") || check::has(m, "data after")), m);
  // a header that claims 2^64 values allocates nothing for them
  BOOST_TEST(check::has(io_error(header(0x0E, {0xffffffffu, 0xffffffffu}) + "abc"), "oversized"));
  BOOST_TEST(check::has(io_error(header(0x0E, {0x100000u, 0x1000u})), "truncated"));
}

BOOST_AUTO_TEST_CASE(fashion_mnist_when_installed) {
  const std::string dir = "/usr/share/datasets/fashion-mnist/";
  if (!std::ifstream(dir + "t10k-labels-idx1-ubyte.gz")) {
    BOOST_TEST_MESSAGE("dataset-fashion-mnist is not installed: skipped");
    return;
  }
  const th::Tensor images = th::load_idx(dir + "t10k-images-idx3-ubyte.gz");
  const th::Tensor labels = th::load_idx(dir + "t10k-labels-idx1-ubyte.gz");
  BOOST_TEST((images.shape() == th::Shape{10000, 28, 28}));
  BOOST_TEST((labels.shape() == th::Shape{10000}));
  BOOST_TEST(th::min(images).item<double>() == 0.0);
  BOOST_TEST(th::max(images).item<double>() == 255.0);
  const auto l = labels.to_vector<std::int64_t>();
  std::vector<int> counts(10);
  for (auto v : l) {
    BOOST_TEST_REQUIRE((v >= 0 && v < 10));
    ++counts[std::size_t(v)];
  }
  for (int c : counts) BOOST_TEST(c == 1000);  // the test set is balanced
  BOOST_TEST(l[0] == 9);                       // an ankle boot, as the dataset's README shows
}
