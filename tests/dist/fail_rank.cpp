// Under mpirun: rank 1 throws while rank 0 waits in an allreduce. The job must end on every
// rank, non-zero, within seconds (ctest runs it with WILL_FAIL and a timeout: a hang fails).
#include <theta/theta.hpp>

int main(int argc, char** argv) {
  th::dist::init(argc, argv);
  if (th::dist::rank() == 1) throw th::ValueError("rank 1 fails on purpose");
  th::dist::allreduce(th::tensor(1.0));  // rank 0 waits here for rank 1
  return 0;
}
