/* unit.h - the C unit-test framework used by lib and program tests.
 *
 *   int main(void) {
 *       unit_begin("str append");
 *       unit_assert(str_try_append(s, "x", 1));
 *       unit_assert_streq(str_cstr(s), "x");
 *       unit_end();
 *       return unit_done();
 *   }
 *
 * Each failed assertion prints file:line, the expression, and got/want.
 * unit_done() prints "N passed, N failed" (", N skipped" when unit_skip
 * was called; tests, not assertions) and
 * returns the exit status. unit_expect_exit() runs a function in a child
 * process and checks how it ended, so msg_fatal/msg_panic can be asserted
 * as expected events. */
#ifndef POSTHORN_UNIT_H
#define POSTHORN_UNIT_H

#include <stdbool.h>

void unit_begin(const char *name);
void unit_end(void);
int unit_done(void);
void unit_fail_at(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* unit_skip - a test that cannot run here (needs root...): printed as
 * "skip - NAME: WHY", counted, and reported by tests/test_unit.py as a
 * pytest skip, never as a pass */
void unit_skip(const char *name, const char *why);

#define unit_assert(cond) do { if (!(cond)) \
    unit_fail_at(__FILE__, __LINE__, "assertion failed: %s", #cond); } while (0)
#define unit_assert_idx(cond, idx) do { if (!(cond)) \
    unit_fail_at(__FILE__, __LINE__, "assertion failed at case %ld: %s", (long) (idx), #cond); } while (0)
#define unit_assert_streq(got, want) do { const char *unit_g_ = (got), *unit_w_ = (want); \
    if (!unit_g_ || !unit_w_ || strcmp(unit_g_, unit_w_) != 0) \
	unit_fail_at(__FILE__, __LINE__, "%s: got \"%s\", want \"%s\"", #got, \
	    unit_g_ ? unit_g_ : "(null)", unit_w_ ? unit_w_ : "(null)"); } while (0)
#define unit_assert_streq_idx(got, want, idx) do { const char *unit_g_ = (got), *unit_w_ = (want); \
    if (!unit_g_ || !unit_w_ || strcmp(unit_g_, unit_w_) != 0) \
	unit_fail_at(__FILE__, __LINE__, "case %ld: %s: got \"%s\", want \"%s\"", (long) (idx), #got, \
	    unit_g_ ? unit_g_ : "(null)", unit_w_ ? unit_w_ : "(null)"); } while (0)
#define unit_assert_inteq(got, want) do { long long unit_g_ = (long long) (got), unit_w_ = (long long) (want); \
    if (unit_g_ != unit_w_) unit_fail_at(__FILE__, __LINE__, "%s: got %lld, want %lld", #got, unit_g_, unit_w_); } while (0)

#define UNIT_EXIT_STATUS	1	/* child exited; *code is the status */
#define UNIT_EXIT_SIGNAL	2	/* child was killed; *code is the signal */
/* unit_expect_exit - run fn(arg) in a child with stderr captured; true if
 * it ended as (how, code) and its stderr contains want_text (if not NULL) */
bool unit_expect_exit(void (*fn)(void *), void *arg, int how, int code, const char *want_text);

#include <string.h>

#endif
