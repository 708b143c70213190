// The communicator on a singleton world (the unit tests run without mpirun). Multi-process behaviour,
// timeouts and killed ranks are covered by tests/dist/ under mpirun.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <vector>

#include "loom/core/dtype.h"
#include "loom/core/error.h"
#include "loom/dist/communicator.h"

namespace loom::dist {
namespace {

std::shared_ptr<Communicator> W() { return Communicator::world(); }

TEST(DistCommunicator, SingletonWorld) {
  auto w = W();
  EXPECT_EQ(w->size(), 1);
  EXPECT_EQ(w->rank(), 0);
  EXPECT_EQ(w->world_rank(), 0);
  EXPECT_EQ(w->name(), "world");
  EXPECT_EQ(Communicator::world().get(), w.get());  // one world
}

TEST(DistCommunicator, DTypeSizesAndNames) {
  EXPECT_EQ(dtype_size(DType::F32), 4u);
  EXPECT_EQ(dtype_size(DType::F64), 8u);
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
  EXPECT_EQ(dtype_size(DType::F16), 2u);
  EXPECT_EQ(dtype_size(DType::I32), 4u);
  EXPECT_EQ(dtype_size(DType::I64), 8u);
  EXPECT_EQ(dtype_size(DType::U8), 1u);
  EXPECT_STREQ(dtype_name(DType::BF16), "bf16");
  EXPECT_STREQ(reduce_op_name(ReduceOp::Max), "max");
}

template <class T>
void check_all_reduce_identity(DType dt, std::vector<T> v) {
  auto w = W();
  for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min}) {
    std::vector<T> x = v;
    w->all_reduce(x.data(), x.size(), dt, op);
    EXPECT_EQ(x, v) << dtype_name(dt) << " " << reduce_op_name(op);
    x = v;
    Request r = w->iall_reduce(x.data(), x.size(), dt, op);
    r.wait();
    EXPECT_FALSE(r.active());
    EXPECT_EQ(x, v);
  }
}

TEST(DistCommunicator, AllReduceEveryTypeOnOneRank) {
  check_all_reduce_identity<float>(DType::F32, {1.5f, -2.f, 3e-8f, 1e30f});
  check_all_reduce_identity<double>(DType::F64, {1.5, -2.0, 1e-300});
  check_all_reduce_identity<int32_t>(DType::I32, {1, -7, std::numeric_limits<int32_t>::max()});
  check_all_reduce_identity<int64_t>(DType::I64, {int64_t(1) << 40, -3});
  check_all_reduce_identity<uint8_t>(DType::U8, {0, 7, 255});
  check_all_reduce_identity<uint16_t>(DType::BF16, {f32_to_bf16(1.5f), f32_to_bf16(-3.25f), f32_to_bf16(1e20f)});
  check_all_reduce_identity<uint16_t>(DType::F16, {f32_to_f16(1.5f), f32_to_f16(-3.25f), f32_to_f16(6e4f)});
  // Zero elements is a no-op, not an error.
  W()->all_reduce(static_cast<float*>(nullptr), 0);
}

TEST(DistCommunicator, TypedOverloads) {
  auto w = W();
  std::vector<float> f = {1, 2, 3};
  w->all_reduce(f.data(), f.size());
  EXPECT_EQ(f, (std::vector<float>{1, 2, 3}));
  std::vector<int64_t> i = {5, -5};
  w->all_reduce(i.data(), i.size(), ReduceOp::Max);
  EXPECT_EQ(i, (std::vector<int64_t>{5, -5}));
  Request r = w->iall_reduce(f.data(), f.size());
  while (!r.test()) {
  }
  EXPECT_TRUE(r.test());
}

TEST(DistCommunicator, ReduceScatterAndAllGatherOnOneRank) {
  auto w = W();
  std::vector<float> in = {1, 2, 3, 4}, out(4, 0.f);
  w->reduce_scatter(in.data(), out.data(), 4, DType::F32);
  EXPECT_EQ(out, in);
  std::vector<float> buf = in;  // in place
  w->reduce_scatter(buf.data(), buf.data(), 4, DType::F32);
  EXPECT_EQ(buf, in);
  std::vector<uint16_t> hin = {f32_to_bf16(1), f32_to_bf16(2)}, hout(2);
  w->reduce_scatter(hin.data(), hout.data(), 2, DType::BF16, ReduceOp::Max);
  EXPECT_EQ(hout, hin);

  std::vector<int64_t> gin = {7, 8}, gout(2, 0);
  w->all_gather(gin.data(), gout.data(), 2, DType::I64);
  EXPECT_EQ(gout, gin);
  std::vector<int64_t> g2 = {9, 10};
  w->all_gather(g2.data(), g2.data(), 2, DType::I64);  // in place: rank 0's slice is the start
  EXPECT_EQ(g2, (std::vector<int64_t>{9, 10}));
  Request r1 = w->ireduce_scatter(in.data(), out.data(), 4, DType::F32);
  Request r2 = w->iall_gather(gin.data(), gout.data(), 2, DType::I64);
  Request both[] = {std::move(r1), std::move(r2)};
  Request::wait_all(both);
  EXPECT_FALSE(both[0].active());
  EXPECT_FALSE(both[1].active());
}

TEST(DistCommunicator, BroadcastBarrierAndStrings) {
  auto w = W();
  std::vector<double> d = {3.25, -1};
  w->broadcast(d.data(), d.size(), DType::F64, 0);
  EXPECT_EQ(d, (std::vector<double>{3.25, -1}));
  w->barrier();
  w->ibarrier().wait();
  std::string s = "--tensor-model-parallel-size 2";
  w->broadcast(s, 0);
  EXPECT_EQ(s, "--tensor-model-parallel-size 2");
  std::string empty;
  w->broadcast(empty, 0);
  EXPECT_EQ(empty, "");
}

TEST(DistCommunicator, SendRecvToSelf) {
  auto w = W();
  std::vector<int32_t> a = {1, 2, 3}, b(3, 0);
  Request reqs[] = {w->irecv(b.data(), 3, DType::I32, 0, 5), w->isend(a.data(), 3, DType::I32, 0, 5)};
  Request::wait_all(reqs);
  EXPECT_EQ(a, b);
  // Blocking recv after a non-blocking send; tags keep messages apart.
  std::vector<float> x = {4, 5}, y = {9, 9}, z(2), u(2);
  Request s1 = w->isend(x.data(), 2, DType::F32, 0, 1);
  Request s2 = w->isend(y.data(), 2, DType::F32, 0, 2);
  w->recv(z.data(), 2, DType::F32, 0, 2);
  w->recv(u.data(), 2, DType::F32, 0, 1);
  s1.wait();
  s2.wait();
  EXPECT_EQ(z, y);
  EXPECT_EQ(u, x);
}

TEST(DistCommunicator, RequestsMoveAndDefault) {
  Request none;
  EXPECT_FALSE(none.active());
  EXPECT_TRUE(none.test());
  none.wait();
  std::vector<float> x = {1};
  Request r = W()->iall_reduce(x.data(), 1);
  Request moved = std::move(r);
  EXPECT_FALSE(r.active());  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  moved.wait();
  {
    Request dropped = W()->iall_reduce(x.data(), 1);  // waited for in the destructor
  }
  EXPECT_EQ(x[0], 1.f);
}

TEST(DistCommunicator, Split) {
  auto w = W();
  auto tp = w->split(0, 0, "tensor-model-parallel");
  ASSERT_NE(tp, nullptr);
  EXPECT_EQ(tp->size(), 1);
  EXPECT_EQ(tp->rank(), 0);
  EXPECT_EQ(tp->name(), "tensor-model-parallel");
  std::vector<float> v = {2};
  tp->all_reduce(v.data(), 1);
  EXPECT_EQ(v[0], 2.f);
  auto sub = tp->split(3, 0, "nested");
  ASSERT_NE(sub, nullptr);
  EXPECT_EQ(sub->name(), "nested");
  EXPECT_EQ(w->split(Communicator::kNoGroup, 0, "none"), nullptr);
}

TEST(DistCommunicator, HalfPrecisionReductionRoundsToNearestEven) {
  // 1 + 2^-8 is exactly halfway between two bf16 values (spacing 2^-7 at 1): ties go to even (1.0).
  std::vector<uint16_t> a = {f32_to_bf16(1.0f), f32_to_bf16(1.0f), f32_to_bf16(256.f)};
  std::vector<uint16_t> b = {f32_to_bf16(0.00390625f), f32_to_bf16(0.01171875f), f32_to_bf16(1.0f)};
  reduce_local(b.data(), a.data(), a.size(), DType::BF16, ReduceOp::Sum);
  EXPECT_EQ(bf16_to_f32(a[0]), 1.0f);          // 1 + 2^-8: tie, rounds to even 1.0
  EXPECT_EQ(bf16_to_f32(a[1]), 1.015625f);     // 1 + 3*2^-8: tie, rounds to even 1 + 2^-6
  EXPECT_EQ(bf16_to_f32(a[2]), 256.f);         // 257 is not representable in bf16: tie to even 256
  std::vector<uint16_t> h = {f32_to_f16(2048.f), f32_to_f16(1.5f)};
  std::vector<uint16_t> k = {f32_to_f16(1.f), f32_to_f16(-3.f)};
  reduce_local(k.data(), h.data(), 2, DType::F16, ReduceOp::Sum);
  EXPECT_EQ(f16_to_f32(h[0]), 2048.f);  // 2049: tie between 2048 and 2050, even mantissa is 2048
  EXPECT_EQ(f16_to_f32(h[1]), -1.5f);
  std::vector<uint16_t> m = {f32_to_f16(1.f), f32_to_f16(-4.f)};
  std::vector<uint16_t> n = {f32_to_f16(2.f), f32_to_f16(-5.f)};
  std::vector<uint16_t> mx = m;
  reduce_local(n.data(), mx.data(), 2, DType::F16, ReduceOp::Max);
  EXPECT_EQ(f16_to_f32(mx[0]), 2.f);
  EXPECT_EQ(f16_to_f32(mx[1]), -4.f);
  reduce_local(n.data(), m.data(), 2, DType::F16, ReduceOp::Min);
  EXPECT_EQ(f16_to_f32(m[0]), 1.f);
  EXPECT_EQ(f16_to_f32(m[1]), -5.f);
  // NaN wins for max and min, so an overflow is not hidden.
  std::vector<uint16_t> nan = {f32_to_bf16(std::nanf(""))}, one = {f32_to_bf16(1.f)};
  reduce_local(nan.data(), one.data(), 1, DType::BF16, ReduceOp::Max);
  EXPECT_TRUE(std::isnan(bf16_to_f32(one[0])));
}

TEST(DistCommunicator, NativeTypesReduceLocally) {
  std::vector<int64_t> a = {1, 5}, b = {3, 2};
  reduce_local(b.data(), a.data(), 2, DType::I64, ReduceOp::Max);
  EXPECT_EQ(a, (std::vector<int64_t>{3, 5}));
  std::vector<float> x = {1.5f}, y = {2.25f};
  reduce_local(y.data(), x.data(), 1, DType::F32, ReduceOp::Sum);
  EXPECT_EQ(x[0], 3.75f);
}

TEST(DistCommunicator, CheckSameAcrossRanksOnOneRank) {
  EXPECT_NO_THROW(check_same_across_ranks("the flag list", "--num-layers 2 --hidden-size 64"));
  EXPECT_NO_THROW(check_same_across_ranks(*W(), "nothing", ""));
}

TEST(DistCommunicator, Timeout) {
  if (std::getenv("LOOM_COMM_TIMEOUT")) GTEST_SKIP() << "LOOM_COMM_TIMEOUT overrides set_timeout";
  double before = timeout();
  EXPECT_EQ(before, 300.0);
  set_timeout(12.5);
  EXPECT_EQ(timeout(), 12.5);
  EXPECT_THROW(set_timeout(0), UserError);
  EXPECT_THROW(set_timeout(-1), UserError);
  EXPECT_THROW(set_timeout(std::numeric_limits<double>::infinity()), UserError);
  EXPECT_EQ(timeout(), 12.5);
  set_timeout(before);
}

}  // namespace
}  // namespace loom::dist
