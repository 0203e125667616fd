/* test-proto.h - helpers shared by the protocol codec unit tests
 * (test-deliver_proto.c, test-bounce_proto.c): bytes back into a list as
 * a peer reads them, a good request with one edit, and a table of
 * refusals run against a decoder. Only unit tests include this. */
#ifndef POSTHORN_TEST_PROTO_H
#define POSTHORN_TEST_PROTO_H

#include <string.h>

/* base */
#include "ipc.h"
#include "str.h"
#include "unit.h"

enum proto_edit { E_NONE, E_NAME, E_VALUE, E_DROP, E_ADD };

/* One refusal case: an edit of the good request, the error it gives. */
struct proto_refusal {
    enum proto_edit how;
    size_t pair;		/* which name/value pair to edit */
    const char *text;		/* the new name or value, or the added name */
    const char *error;		/* a part of the error text; NULL: accepted */
};

/* proto_test_wire - encoded bytes back into a list, as the peer reads them */
static inline void proto_test_wire(const struct str *out, struct ipc_list *list)
{
    const char *err;

    unit_assert(ipc_decode_list(str_cstr(out), str_len(out), list, &err) == (long) str_len(out));
}

/* proto_test_edited - the good pairs (name, value, ...) with one edit */
static inline void proto_test_edited(struct ipc_list *list, const char *const *good, size_t pairs,
				     enum proto_edit how, size_t k, const char *text, size_t len)
{
    ipc_list_reset(list);
    for (size_t i = 0; i < pairs; i++) {
	const char *name = good[2 * i], *value = good[2 * i + 1];
	size_t vlen = strlen(value);

	if (i == k && how == E_DROP)
	    continue;
	if (i == k && how == E_NAME)
	    name = text;
	if (i == k && how == E_VALUE) {
	    value = text;
	    vlen = len;
	}
	ipc_list_add(list, name, value, vlen);
    }
    if (how == E_ADD)
	ipc_list_add(list, text, "x", 1);
}

/* proto_test_refusals - run each case through decode (which decodes,
 * frees and returns 0 or -1 with *error_r) and check the outcome */
static inline void proto_test_refusals(const struct proto_refusal *cases, size_t n,
				       const char *const *good, size_t pairs,
				       int (*decode)(const struct ipc_list *, const char **))
{
    struct ipc_list list;
    const char *err = "";

    ipc_list_init(&list);
    for (size_t i = 0; i < n; i++) {
	int rc;

	proto_test_edited(&list, good, pairs, cases[i].how, cases[i].pair, cases[i].text,
			  cases[i].text ? strlen(cases[i].text) : 0);
	rc = decode(&list, &err);
	if (cases[i].error == NULL) {
	    unit_assert_idx(rc == 0, i);
	} else {
	    unit_assert_idx(rc == -1, i);
	    if (rc == -1 && strstr(err, cases[i].error) == NULL)
		unit_fail_at(__FILE__, __LINE__, "case %zu: got \"%s\", want \"%s\"", i, err,
			     cases[i].error);
	}
    }
    ipc_list_fini(&list);
}

#endif
