/* test-queue_space.c - unit tests for queue_space.c: the free space
 * rule (queue_minfree, 1.5 x message_size_limit, 1.5 x SIZE=) and its
 * statvfs check. */

#include <stdint.h>

#include "config.h"
#include "queue_space.h"
#include "unit.h"

/* test_need - the rule, with and without queue_minfree and SIZE= */
static void test_need(void)
{
    unit_begin("queue_space_need: queue_minfree or 1.5 x message_size_limit, + 1.5 x SIZE");
    var_queue_minfree = 0;
    var_message_size_limit = 10240000;
    unit_assert(queue_space_need(0) == 15360000);
    unit_assert(queue_space_need(1000) == 15361500);
    var_message_size_limit = 0;
    unit_assert(queue_space_need(0) == 0);
    var_queue_minfree = 262144;
    unit_assert(queue_space_need(0) == 262144);
    unit_assert(queue_space_need(3) == 262144 + 5);
    unit_assert(queue_space_need(UINT64_MAX) == UINT64_MAX);
    unit_end();
}

/* test_check - statvfs of the scratch directory */
static void test_check(void)
{
    uint64_t avail = 0;

    unit_begin("queue_space_check: enough, not enough, no such directory");
    var_queue_minfree = 1;
    var_message_size_limit = 0;
    unit_assert(queue_space_check(".", 0, &avail) == 1);
    unit_assert(avail > 0);
    unit_assert(queue_space_check(".", avail, &avail) == 0);
    unit_assert(queue_space_check("./no/such/dir", 0, &avail) == -1);
    unit_end();
}

int main(void)
{
    test_need();
    test_check();
    return unit_done();
}
