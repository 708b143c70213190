// ClipLoss under whatever data-parallel world mpirun gives, behind two linear "towers" so that the
// data-parallel average of real parameter gradients is checked, not only the latent gradients:
//   image_latent = f_img @ W_img^T, text_latent = f_txt @ W_txt^T      (rank r takes rows r*b .. r*b+b-1)
//   loss = ClipLoss(image_latent, text_latent, logit_scale_param); backward with grad_scale
//   dW = d_latent^T @ f, then averaged over the ranks as GradReducer does; d_param likewise.
// The same driver without mpirun is the one-process case (test_clip_loss_parity.py).
//   clip_loss_driver IN.bin OUT.bin GRAD_SCALE [REPEAT]
// IN.bin: int32 N, E, F; float32 param, d_param_init; f_img [N,F]; f_txt [N,F]; W_img [E,F]; W_txt [E,F].
// OUT.bin (rank 0), float32: per rank {loss, loss_i2t, loss_t2i, i2t_acc, t2i_acc, logit_scale, d_param};
// then the DP-averaged d_param (d_param_init included), dW_img [E,F], dW_txt [E,F]; then every rank's
// latent gradients in rank order, d_img [N,E], d_txt [N,E]. REPEAT > 1 runs the step that many times on
// the same buffers (the outputs of the last one are written) to show nothing leaks from one step to the next.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "loom/dist/communicator.h"
#include "loom/kernels/cpu/gemm.h"
#include "loom/models/coca/clip_loss.h"

using namespace loom;

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: clip_loss_driver IN.bin OUT.bin GRAD_SCALE [REPEAT]\n");
    return 2;
  }
  auto comm = dist::Communicator::world();
  const int R = comm->size(), rank = comm->rank();
  const float grad_scale = float(std::atof(argv[3]));
  const int repeat = argc > 4 ? std::atoi(argv[4]) : 1;
  std::ifstream in(argv[1], std::ios::binary);
  int32_t hdr[3];
  float pv[2];
  in.read(reinterpret_cast<char*>(hdr), sizeof hdr);
  in.read(reinterpret_cast<char*>(pv), sizeof pv);
  const int N = hdr[0], E = hdr[1], F = hdr[2];
  if (!in || N % R != 0) {
    std::fprintf(stderr, "clip_loss_driver: bad input or N %% ranks != 0\n");
    return 2;
  }
  const int b = N / R;
  auto read = [&](size_t n) {
    std::vector<float> v(n);
    in.read(reinterpret_cast<char*>(v.data()), std::streamsize(n * 4));
    return v;
  };
  std::vector<float> f_img = read(size_t(N) * F), f_txt = read(size_t(N) * F);
  std::vector<float> W_img = read(size_t(E) * F), W_txt = read(size_t(E) * F);
  if (!in) {
    std::fprintf(stderr, "clip_loss_driver: short input\n");
    return 2;
  }
  const float* fi = f_img.data() + size_t(rank) * b * F;
  const float* ft = f_txt.data() + size_t(rank) * b * F;

  ClipLoss loss(comm.get(), b, E);
  std::vector<float> lat_i(size_t(b) * E), lat_t(size_t(b) * E), d_i(size_t(b) * E), d_t(size_t(b) * E);
  std::vector<float> dW_i(size_t(E) * F), dW_t(size_t(E) * F);
  float d_param = 0;
  ClipLossStats st;
  for (int it = 0; it < repeat; it++) {
    std::fill(dW_i.begin(), dW_i.end(), 0.0f);
    std::fill(dW_t.begin(), dW_t.end(), 0.0f);
    d_param = pv[1];
    cpu::gemm(false, true, b, E, F, 1.0f, fi, F, W_img.data(), F, 0.0f, lat_i.data(), E);
    cpu::gemm(false, true, b, E, F, 1.0f, ft, F, W_txt.data(), F, 0.0f, lat_t.data(), E);
    st = loss.forward(lat_i.data(), lat_t.data(), pv[0], b);
    loss.backward(grad_scale, d_i.data(), d_t.data(), &d_param);
    cpu::gemm(true, false, E, F, b, 1.0f, d_i.data(), E, fi, F, 1.0f, dW_i.data(), F);
    cpu::gemm(true, false, E, F, b, 1.0f, d_t.data(), E, ft, F, 1.0f, dW_t.data(), F);
  }
  const float local_d_param = d_param;
  // GradReducer's data-parallel average.
  comm->all_reduce(dW_i.data(), dW_i.size());
  comm->all_reduce(dW_t.data(), dW_t.size());
  comm->all_reduce(&d_param, 1);
  for (float* v : {dW_i.data(), dW_t.data()})
    for (size_t k = 0; k < size_t(E) * F; k++) v[k] /= float(R);
  d_param /= float(R);

  float mine[7] = {st.loss, st.loss_i2t, st.loss_t2i, st.i2t_acc, st.t2i_acc, st.logit_scale, local_d_param};
  std::vector<float> stats(size_t(7) * R), all_di(size_t(N) * E), all_dt(size_t(N) * E);
  comm->all_gather(mine, stats.data(), 7);
  comm->all_gather(d_i.data(), all_di.data(), d_i.size());
  comm->all_gather(d_t.data(), all_dt.data(), d_t.size());
  if (rank == 0) {
    std::ofstream out(argv[2], std::ios::binary);
    auto put = [&](const float* p, size_t n) { out.write(reinterpret_cast<const char*>(p), std::streamsize(n * 4)); };
    put(stats.data(), stats.size());
    put(&d_param, 1);
    put(dW_i.data(), dW_i.size());
    put(dW_t.data(), dW_t.size());
    put(all_di.data(), all_di.size());
    put(all_dt.data(), all_dt.size());
    if (!out) {
      std::fprintf(stderr, "clip_loss_driver: cannot write %s\n", argv[2]);
      return 1;
    }
  }
  return 0;
}
