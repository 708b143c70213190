// loom report's table: numbers keep the log's text, unit changes move the decimal point exactly, memory
// keeps the largest rank's figure, the CSV puts the standard columns first and quotes what needs it.
#include <gtest/gtest.h>

#include "loom/report/log_parsers.h"
#include "loom/report/metrics_table.h"

using namespace loom::report;

TEST(ReportTable, ShiftDecimalIsExact) {
  EXPECT_EQ(shift_decimal("1.856", 3), "1856");
  EXPECT_EQ(shift_decimal("38.165", 3), "38165");
  EXPECT_EQ(shift_decimal("0.001", 3), "1");
  EXPECT_EQ(shift_decimal("0.0005", 3), "0.5");
  EXPECT_EQ(shift_decimal("2", 3), "2000");
  EXPECT_EQ(shift_decimal("-1.5", 3), "-1500");
  EXPECT_EQ(shift_decimal("12.34567", 3), "12345.67");
}

TEST(ReportTable, NumbersAndText) {
  double v;
  EXPECT_TRUE(parse_number("4.687E-05", &v));
  EXPECT_DOUBLE_EQ(v, 4.687e-05);
  EXPECT_TRUE(parse_number("65536.", &v));
  EXPECT_FALSE(parse_number("12ab", &v));
  EXPECT_FALSE(parse_number("", &v));
  EXPECT_FALSE(parse_number("True", &v));
  RunTable t;
  EXPECT_TRUE(t.set(3, "lr", "1.500E-06"));
  EXPECT_FALSE(t.set(3, "grad_norm", "n/a"));
  EXPECT_TRUE(t.set_max(3, "mem_allocated_mb", "10.5"));
  EXPECT_TRUE(t.set_max(3, "mem_allocated_mb", "9.0"));
  EXPECT_TRUE(t.set_max(3, "mem_allocated_mb", "12.25"));
  EXPECT_FALSE(t.set_if_absent(3, "lr", "9"));
  EXPECT_EQ(t.rows().at(3).at("lr").text, "1.500E-06");
  EXPECT_EQ(t.rows().at(3).at("mem_allocated_mb").text, "12.25");
  EXPECT_EQ(t.rows().at(3).count("grad_norm"), 0u);
}

TEST(ReportTable, CsvColumnsAndQuoting) {
  RunTable t;
  t.name = "a,b";
  t.set(1, "time_ms[forward]", "1.0");
  t.set(1, "loss[lm loss]", "2.5");
  t.set(1, "consumed_samples", "8");
  t.set(1, "lr", "0.1");
  const auto cols = table_columns({t});
  ASSERT_GE(cols.size(), 15u);
  EXPECT_EQ(cols.front(), "loss[lm loss]");
  EXPECT_EQ(cols[1], "lr");
  EXPECT_EQ(cols.back(), "time_ms[forward]");
  EXPECT_EQ(cols[cols.size() - 2], "consumed_samples");
  const std::string csv = csv_text({t}, cols);
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "run,iteration,loss[lm loss],lr,loss_scale,grad_norm,skipped_iters,step_time_ms,"
                                           "tokens_per_s,samples_per_s,tflops,mem_allocated_mb,mem_max_allocated_mb,"
                                           "mem_reserved_mb,mem_max_reserved_mb,consumed_samples,time_ms[forward]");
  EXPECT_EQ(csv.substr(csv.find('\n') + 1), "\"a,b\",1,2.5,0.1,,,,,,,,,,,,8,1.0\n");
}

TEST(ReportParsers, MegatronLineForms) {
  MegatronParser p;
  EXPECT_TRUE(p.line(" [2025-06-28 18:42:27] iteration        1/      20 | consumed samples:           16 | "
                     "learning rate: 0.000000E+00 | lm loss: 1.129461E+01 |"));
  EXPECT_TRUE(p.line("time (ms) | forward-compute: 2033.50 | backward-compute: 5323.59"));
  EXPECT_TRUE(p.line(" iteration        5/ 1000000 | elapsed time per iteration (ms): 1196.2 | learning rate 7.500E-08 |"));
  EXPECT_TRUE(p.line(" validation loss at iteration 5 on test set | lm loss value: 1.0E+01 | lm loss PPL: 2.2E+04 | "));
  EXPECT_FALSE(p.line("rank=0 time (ms) | optimizer_gradients: 18.83"));
  EXPECT_FALSE(p.line("number of iterations: 5"));
  const auto& r = p.table().rows();
  EXPECT_EQ(r.at(1).at("consumed_samples").text, "16");
  EXPECT_EQ(r.at(1).at("loss[lm loss]").text, "1.129461E+01");
  EXPECT_EQ(r.at(1).at("time_ms[forward-compute]").text, "2033.50");
  EXPECT_EQ(r.at(5).at("lr").text, "7.500E-08");
  EXPECT_EQ(r.at(5).at("test_ppl[lm loss]").text, "2.2E+04");
  EXPECT_FALSE(p.saw_loom_fields());
}
