// Fused Winograd F(m x m, 3 x 3) input and output transforms for ssd_zoo/winograd.py.
//
// Why hand-written: in eager PyTorch each transform is 4-5 passes over memory (pad, window
// gather, two small matmuls, a permute copy); these kernels do each transform in one pass,
// which is what makes Winograd pay on the thin high-resolution layers.  The matrix products
// between the two transforms stay in torch.bmm.
//
// Layouts (all float32, contiguous):
//   input   x  (N, H, W, C)        NHWC
//   tiles   V  (T, a*a, C)         T = N * th * tw tiles, tile (n, ty, tx) at n*th*tw+ty*tw+tx;
//                                  tile-major so that each tile's writes are one block
//                                  (torch.bmm takes V.permute(1, 0, 2) without a copy)
//   products M (a*a, T, K)
//   output  y  (N, H, W, K)        NHWC, optional bias and ReLU applied
// with a = m + 2, th = ceil(H / m), tw = ceil(W / m); the 3x3 convolution has padding 1.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <cstring>
#include <vector>

namespace {

constexpr int kVec = 16;     // channels processed together (one AVX-512 register)

// GCC/Clang vector extension: kVec floats as one value, so that every transform step is a
// vector multiply-add whatever the auto-vectorizer decides (AVX-512: one zmm; AVX2: two ymm).
typedef float vf __attribute__((vector_size(kVec * sizeof(float))));

inline vf load_chunk(const float* src, int64_t n) {
  vf r;
  if (n == kVec) {
    std::memcpy(&r, src, sizeof(vf));
  } else {
    float tmp[kVec] = {0};
    std::memcpy(tmp, src, n * sizeof(float));
    std::memcpy(&r, tmp, sizeof(vf));
  }
  return r;
}

inline void store_chunk(float* dst, vf v, int64_t n) {
  if (n == kVec) {
    std::memcpy(dst, &v, sizeof(vf));
  } else {
    float tmp[kVec];
    std::memcpy(tmp, &v, sizeof(vf));
    std::memcpy(dst, tmp, n * sizeof(float));
  }
}

// Loops have compile-time bounds (template on the tile size a) so that gcc unrolls them
// and vectorizes the kVec channel lanes.
template <int a>
torch::Tensor input_transform_a(const torch::Tensor& x, const torch::Tensor& bt,
                                torch::Tensor v) {
  constexpr int64_t m = a - 2;
  const int64_t n = x.size(0), h = x.size(1), w = x.size(2), c = x.size(3);
  const int64_t th = (h + m - 1) / m, tw = (w + m - 1) / m, tiles = n * th * tw;
  TORCH_CHECK(v.is_contiguous() && v.scalar_type() == torch::kFloat &&
              v.sizes() == torch::IntArrayRef({tiles, a * a, c}), "out must be (T, a*a, C)");
  float b[a][a];
  auto bt_c = bt.to(torch::kFloat).contiguous();
  for (int i = 0; i < a; ++i)
    for (int j = 0; j < a; ++j) b[i][j] = bt_c.data_ptr<float>()[i * a + j];
  const float* xp = x.data_ptr<float>();
  float* vp = v.data_ptr<float>();
  at::parallel_for(0, tiles, 4, [&](int64_t t0, int64_t t1) {
    vf d[a][a];
    vf tmp[a][a];
    const vf zero = {0};
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t ni = t / (th * tw), ty = (t / tw) % th, tx = t % tw;
      for (int64_t c0 = 0; c0 < c; c0 += kVec) {
        const int64_t cn = std::min<int64_t>(kVec, c - c0);
        for (int u = 0; u < a; ++u) {
          const int64_t yy = ty * m + u - 1;
          for (int q = 0; q < a; ++q) {
            const int64_t xx = tx * m + q - 1;
            d[u][q] = (yy < 0 || yy >= h || xx < 0 || xx >= w)
                          ? zero : load_chunk(xp + ((ni * h + yy) * w + xx) * c + c0, cn);
          }
        }
        // tmp = B^T d (over rows), then V = tmp B (over columns)
        for (int i = 0; i < a; ++i)
          for (int q = 0; q < a; ++q) {
            vf acc = d[0][q] * b[i][0];
            for (int u = 1; u < a; ++u) acc += d[u][q] * b[i][u];
            tmp[i][q] = acc;
          }
        for (int i = 0; i < a; ++i)
          for (int j = 0; j < a; ++j) {
            vf acc = tmp[i][0] * b[j][0];
            for (int q = 1; q < a; ++q) acc += tmp[i][q] * b[j][q];
            store_chunk(vp + (t * a * a + i * a + j) * c + c0, acc, cn);
          }
      }
    }
  });
  return v;
}

// ``out``: a preallocated (T, a*a, C) float32 tensor (reused across calls: writing into
// touched memory is ~4x faster than into a fresh allocation on the machines measured).
torch::Tensor input_transform(torch::Tensor x, torch::Tensor bt, int64_t m, torch::Tensor out) {
  TORCH_CHECK(x.dim() == 4 && x.scalar_type() == torch::kFloat && x.is_contiguous(),
              "x must be a contiguous float32 (N, H, W, C) tensor");
  TORCH_CHECK(bt.sizes() == torch::IntArrayRef({m + 2, m + 2}), "bad B^T");
  if (m == 2) return input_transform_a<4>(x, bt, out);
  if (m == 4) return input_transform_a<6>(x, bt, out);
  if (m == 6) return input_transform_a<8>(x, bt, out);
  TORCH_CHECK(false, "tile size m must be 2, 4 or 6, got ", m);
}

template <int a>
torch::Tensor output_transform_a(const torch::Tensor& prod, const torch::Tensor& at_, int64_t n,
                                 int64_t h, int64_t w, const float* bp, bool relu) {
  constexpr int64_t m = a - 2;
  TORCH_CHECK(prod.dim() == 3 && prod.size(0) == a * a && prod.scalar_type() == torch::kFloat
              && prod.is_contiguous(), "products must be contiguous float32 (a*a, T, K)");
  TORCH_CHECK(at_.sizes() == torch::IntArrayRef({m, a}), "bad A^T");
  const int64_t th = (h + m - 1) / m, tw = (w + m - 1) / m, tiles = n * th * tw;
  TORCH_CHECK(prod.size(1) == tiles, "products have ", prod.size(1), " tiles, expected ", tiles);
  const int64_t k = prod.size(2);
  auto y = torch::empty({n, h, w, k}, prod.options());
  float A[m][a];
  auto at_c = at_.to(torch::kFloat).contiguous();
  for (int p = 0; p < m; ++p)
    for (int i = 0; i < a; ++i) A[p][i] = at_c.data_ptr<float>()[p * a + i];
  const float* mp = prod.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, tiles, 4, [&](int64_t t0, int64_t t1) {
    vf tmp[m][a];
    vf mv[a][a];
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t ni = t / (th * tw), ty = (t / tw) % th, tx = t % tw;
      for (int64_t k0 = 0; k0 < k; k0 += kVec) {
        const int64_t kn = std::min<int64_t>(kVec, k - k0);
        for (int i = 0; i < a; ++i)
          for (int j = 0; j < a; ++j)
            mv[i][j] = load_chunk(mp + ((i * a + j) * tiles + t) * k + k0, kn);
        const vf bvec = bp ? load_chunk(bp + k0, kn) : vf{0};
        // tmp = A^T M (over rows), then Y = tmp A (over columns)
        for (int p = 0; p < m; ++p)
          for (int j = 0; j < a; ++j) {
            vf acc = mv[0][j] * A[p][0];
            for (int i = 1; i < a; ++i) acc += mv[i][j] * A[p][i];
            tmp[p][j] = acc;
          }
        for (int p = 0; p < m; ++p) {
          const int64_t yy = ty * m + p;
          if (yy >= h) break;
          for (int q = 0; q < m; ++q) {
            const int64_t xx = tx * m + q;
            if (xx >= w) break;
            vf acc = bvec;
            for (int j = 0; j < a; ++j) acc += tmp[p][j] * A[q][j];
            if (relu) acc = acc > 0.f ? acc : vf{0};
            store_chunk(yp + ((ni * h + yy) * w + xx) * k + k0, acc, kn);
          }
        }
      }
    }
  });
  return y;
}

torch::Tensor output_transform(torch::Tensor prod, torch::Tensor at_, int64_t m, int64_t n,
                               int64_t h, int64_t w, c10::optional<torch::Tensor> bias,
                               bool relu) {
  const float* bp = nullptr;
  torch::Tensor bias_c;
  if (bias.has_value() && bias->defined()) {
    bias_c = bias->to(torch::kFloat).contiguous();
    TORCH_CHECK(bias_c.numel() == prod.size(-1), "bias has ", bias_c.numel(), " values for ",
                prod.size(-1), " channels");
    bp = bias_c.data_ptr<float>();
  }
  if (m == 2) return output_transform_a<4>(prod, at_, n, h, w, bp, relu);
  if (m == 4) return output_transform_a<6>(prod, at_, n, h, w, bp, relu);
  if (m == 6) return output_transform_a<8>(prod, at_, n, h, w, bp, relu);
  TORCH_CHECK(false, "tile size m must be 2, 4 or 6, got ", m);
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, mod) {
  mod.def("input_transform", &input_transform, "x (N,H,W,C) -> V (T, a*a, C), written into out");
  mod.def("output_transform", &output_transform,
          "M (a*a, T, K) -> y (N,H,W,K) [+ bias] [ReLU]");
}
