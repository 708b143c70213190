// TEMPORARY SHIM (replaced by the kernels branch): naive versions to compile against.
#include <cmath>
#include <stdexcept>
#include "loom/kernels/cpu/activation.h"
#include "loom/kernels/cpu/rmsnorm.h"
#include "loom/kernels/cpu/rope.h"
namespace loom::cpu {
void rmsnorm_forward(const float* x, const float* w, float* y, float* rstd, int N, int C, float eps) {
  for (int r = 0; r < N; r++) { double s = 0; for (int c = 0; c < C; c++) s += double(x[r*C+c])*x[r*C+c];
    float rs = 1.f / std::sqrt(float(s / C) + eps); rstd[r] = rs; for (int c = 0; c < C; c++) y[r*C+c] = x[r*C+c]*rs*w[c]; }
}
void rmsnorm_backward(const float* dy, const float* x, const float* w, const float* rstd, float* dx, float* dw, int N, int C) {
  for (int r = 0; r < N; r++) { double dot = 0; for (int c = 0; c < C; c++) dot += double(dy[r*C+c])*w[c]*x[r*C+c];
    float rs = rstd[r]; float k = float(dot / C) * rs * rs * rs;
    for (int c = 0; c < C; c++) { dx[r*C+c] += dy[r*C+c]*w[c]*rs - k*x[r*C+c]; dw[c] += dy[r*C+c]*x[r*C+c]*rs; } }
}
std::vector<float> rope_inv_freq(int d, double base, const RopeScaling*) { std::vector<float> f(d/2); for (int i=0;i<d/2;i++) f[i]=float(1.0/std::pow(base, 2.0*i/d)); return f; }
RopeTable make_rope_table(int d, int P, const std::vector<float>& inv) { RopeTable t{d,P,{},{}}; t.cos.resize(size_t(P)*d/2); t.sin.resize(size_t(P)*d/2);
  for (int p=0;p<P;p++) for (int i=0;i<d/2;i++){ float a=float(p)*inv[i]; t.cos[p*(d/2)+i]=std::cos(a); t.sin[p*(d/2)+i]=std::sin(a);} return t; }
static void rot(float* x, int rows, long ld, int heads, long hs, int d, const int32_t* pos, const RopeTable& t, float sg) {
  for (int r=0;r<rows;r++) for (int h=0;h<heads;h++){ float* v=x+r*ld+h*hs; for(int i=0;i<d/2;i++){ float c=t.cos[pos[r]*(d/2)+i], s=sg*t.sin[pos[r]*(d/2)+i];
    float a=v[i], b=v[i+d/2]; v[i]=a*c-b*s; v[i+d/2]=b*c+a*s; } } }
void rope_forward(float* x, int rows, long ld, int heads, long hs, int d, const int32_t* pos, const RopeTable& t, bool) { rot(x,rows,ld,heads,hs,d,pos,t,1.f); }
void rope_backward(float* x, int rows, long ld, int heads, long hs, int d, const int32_t* pos, const RopeTable& t, bool) { rot(x,rows,ld,heads,hs,d,pos,t,-1.f); }
void bias_swiglu_forward(const float* x, const float*, float* y, int N, int F) { for (int r=0;r<N;r++) for(int c=0;c<F;c++){ float a=x[r*2*F+c], b=x[r*2*F+F+c]; y[r*F+c]=a/(1.f+std::exp(-a))*b; } }
void bias_swiglu_backward(const float* dy, const float* x, const float*, float* dx, float*, int N, int F) { for (int r=0;r<N;r++) for(int c=0;c<F;c++){ float a=x[r*2*F+c], b=x[r*2*F+F+c]; float s=1.f/(1.f+std::exp(-a));
  dx[r*2*F+c]=dy[r*F+c]*b*(s+a*s*(1-s)); dx[r*2*F+F+c]=dy[r*F+c]*a*s; } }
void bias_gelu_exact_forward(const float*, const float*, float*, int, int) { throw std::logic_error("shim"); }
void bias_gelu_exact_backward(const float*, const float*, const float*, float*, float*, int, int) { throw std::logic_error("shim"); }
void bias_quick_gelu_forward(const float*, const float*, float*, int, int) { throw std::logic_error("shim"); }
void bias_quick_gelu_backward(const float*, const float*, const float*, float*, float*, int, int) { throw std::logic_error("shim"); }
}
