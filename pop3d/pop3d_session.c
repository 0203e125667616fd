/* pop3d_session.c - the TRANSACTION and UPDATE states of RFC 1939 on one
 * locked mailbox: STAT, LIST, RETR, DELE, NOOP, RSET, TOP, UIDL, CAPA,
 * QUIT. Message numbers are fixed at login (the store's snapshot is
 * never refreshed during a session, so mail delivered meanwhile waits
 * for the next one); DELE only marks, and QUIT removes the marked files
 * durably (unlink, then fsync of the directory, store_expunge) before
 * its +OK. A session that ends any other way deletes nothing. */

/* system */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

/* base */
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "stream.h"

/* mail */
#include "config.h"
#include "pop3_cmd.h"
#include "store.h"

/* pop3d */
#include "pop3d.h"

struct session {
    struct stream *client;
    struct store_mailbox *mb;
    const char *user;
    size_t count;		/* messages at login */
    bool *deleted;		/* marked by DELE */
    size_t ndeleted;
    off_t total;		/* octets of the messages not marked */
    size_t retrieved;		/* RETR/TOP done */
    off_t retrieved_octets;
};

/* sess_uidl - the unique-id of a message: UID and UIDVALIDITY, each as 8
 * hex digits (Dovecot's default "%08Xu%08Xv"): stable across sessions
 * and the same UID as IMAP's */
static void sess_uidl(const struct session *ss, const struct store_msg *m, char *buf, size_t size)
{
    fmt_buf_or_panic(buf, size, "%08" PRIX32 "%08" PRIX32, m->uid, store_uidvalidity(ss->mb));
}

/* sess_msgno - the message named by arg: 1..count and not deleted; else
 * answers -ERR and returns NULL */
static const struct store_msg *sess_msgno(struct session *ss, const char *arg, size_t *idx)
{
    long n;

    if (!pop3_parse_number(arg, 1000000000L, &n)) {
	pop3_err(ss->client, NULL, "Invalid message number: %.40s", arg);
	return NULL;
    }
    if (n < 1 || (size_t) n > ss->count) {
	pop3_err(ss->client, NULL, "No such message: %ld", n);
	return NULL;
    }
    if (ss->deleted[n - 1]) {
	pop3_err(ss->client, NULL, "Message %ld is deleted", n);
	return NULL;
    }
    *idx = (size_t) n - 1;
    return store_msg(ss->mb, (size_t) n - 1);
}

/* sess_args - the command takes min..max arguments; else -ERR */
static bool sess_args(struct session *ss, const struct pop3_command *cmd, int min, int max,
		      const char *syntax)
{
    if (cmd->bad_args || cmd->argc < min || cmd->argc > max) {
	pop3_err(ss->client, NULL, "Syntax: %s", syntax);
	return false;
    }
    return true;
}

/* sess_list - LIST and UIDL, with or without a message number */
static void sess_list(struct session *ss, const struct pop3_command *cmd, bool uidl)
{
    const struct store_msg *m;
    char id[32];
    size_t i;

    if (!sess_args(ss, cmd, 0, 1, uidl ? "UIDL [msg]" : "LIST [msg]"))
	return;
    if (cmd->argc == 1) {
	if ((m = sess_msgno(ss, cmd->argv[0], &i)) == NULL)
	    return;
	if (uidl) {
	    sess_uidl(ss, m, id, sizeof(id));
	    pop3_ok(ss->client, "%zu %s", i + 1, id);
	} else {
	    pop3_ok(ss->client, "%zu %lld", i + 1, (long long) m->crlf_size);
	}
	return;
    }
    if (uidl)
	pop3_ok(ss->client, "Unique-ID listing follows");
    else
	pop3_ok(ss->client, "%zu messages (%lld octets)", ss->count - ss->ndeleted,
		(long long) ss->total);
    for (i = 0; i < ss->count; i++) {
	if (ss->deleted[i])
	    continue;
	m = store_msg(ss->mb, i);
	if (uidl) {
	    sess_uidl(ss, m, id, sizeof(id));
	    (void) stream_printf(ss->client, "%zu %s\r\n", i + 1, id);
	} else {
	    (void) stream_printf(ss->client, "%zu %lld\r\n", i + 1, (long long) m->crlf_size);
	}
    }
    (void) stream_write(ss->client, ".\r\n", 3);
}

/* sess_retr - RETR msg, TOP msg n; false: end the session (the reply
 * could not be completed) */
static bool sess_retr(struct session *ss, const struct pop3_command *cmd, bool top)
{
    const struct store_msg *m;
    const char *err;
    long lines = -1;
    off_t sent;
    size_t i;
    int fd;

    if (!sess_args(ss, cmd, top ? 2 : 1, top ? 2 : 1, top ? "TOP msg lines" : "RETR msg"))
	return true;
    if (top && !pop3_parse_number(cmd->argv[1], 2147483647L, &lines)) {
	pop3_err(ss->client, NULL, "Invalid number of lines: %.40s", cmd->argv[1]);
	return true;
    }
    if ((m = sess_msgno(ss, cmd->argv[0], &i)) == NULL)
	return true;
    if ((fd = store_open_msg(ss->mb, i, &err)) < 0) {
	if (errno == ENOENT) {
	    pop3_err(ss->client, NULL, "Message %zu was removed by another session", i + 1);
	    return true;
	}
	msg_warn("user=<%s>: %s", ss->user, err);
	pop3_err(ss->client, POP3_CODE_SYS_TEMP, "Cannot read message %zu", i + 1);
	return true;
    }
    if (top)
	pop3_ok(ss->client, "Top of message follows");
    else
	pop3_ok(ss->client, "%lld octets", (long long) m->crlf_size);
    if (pop3d_send_msg(ss->client, fd, lines, &sent) < 0) {
	if (stream_error(ss->client) == STREAM_OK)
	    msg_warn("user=<%s>: read error in message UID %" PRIu32 ": %m", ss->user, m->uid);
	(void) close(fd);
	return false;
    }
    (void) close(fd);
    ss->retrieved++;
    ss->retrieved_octets += m->crlf_size;
    return true;
}

/* sess_quit - the UPDATE state: remove what DELE marked, durably */
static void sess_quit(struct session *ss)
{
    uint32_t *uids;
    size_t n = 0, removed = 0;
    const char *err;

    if (ss->ndeleted == 0) {
	pop3_ok(ss->client, "Bye");
	return;
    }
    uids = mem_alloc_array(ss->ndeleted, sizeof(*uids));
    for (size_t i = 0; i < ss->count; i++)
	if (ss->deleted[i])
	    uids[n++] = store_msg(ss->mb, i)->uid;
    if (store_expunge(ss->mb, uids, n, &removed, &err) < 0) {
	msg_warn("user=<%s>: deleting messages: %s", ss->user, err);
	pop3_err(ss->client, POP3_CODE_SYS_TEMP, "Some deleted messages were not removed");
    } else {
	pop3_ok(ss->client, "Bye, %zu message%s deleted", n, n == 1 ? "" : "s");
    }
    msg_info("user=<%s>: deleted %zu of %zu message%s", ss->user, removed, n, n == 1 ? "" : "s");
    mem_free(&uids);
}

/* pop3d_session - the commands after login */
void pop3d_session(struct stream *client, struct store_mailbox *mb, const char *user,
		   const char *client_addr)
{
    struct session ss;
    struct pop3_command cmd;
    struct str *line = str_new(var_pop3d_line_limit);
    long commands = 0;
    bool quit = false;

    memset(&ss, 0, sizeof(ss));
    ss.client = client;
    ss.mb = mb;
    ss.user = user;
    ss.count = store_count(mb);
    ss.deleted = mem_alloc_array(ss.count + 1, sizeof(bool));
    memset(ss.deleted, 0, (ss.count + 1) * sizeof(bool));
    for (size_t i = 0; i < ss.count; i++)
	ss.total += store_msg(mb, i)->crlf_size;
    stream_set_timeout(client, (int) (var_pop3d_idle_timeout * 1000));
    pop3_ok(client, "Logged in, %zu message%s (%lld octets)", ss.count, ss.count == 1 ? "" : "s",
	    (long long) ss.total);

    while (!quit) {
	size_t i;

	if (pop3_flush_if_idle(client) < 0)
	    break;
	if (!pop3_next_command(client, line, var_pop3d_line_limit, &cmd, &commands,
			       var_pop3d_command_limit))
	    break;
	if (cmd.answered) {
	    /* refused by pop3_next_command */
	} else if (strcmp(cmd.verb, "STAT") == 0) {
	    if (sess_args(&ss, &cmd, 0, 0, "STAT"))
		pop3_ok(client, "%zu %lld", ss.count - ss.ndeleted, (long long) ss.total);
	} else if (strcmp(cmd.verb, "LIST") == 0) {
	    sess_list(&ss, &cmd, false);
	} else if (strcmp(cmd.verb, "UIDL") == 0) {
	    sess_list(&ss, &cmd, true);
	} else if (strcmp(cmd.verb, "RETR") == 0) {
	    if (!sess_retr(&ss, &cmd, false))
		break;
	} else if (strcmp(cmd.verb, "TOP") == 0) {
	    if (!sess_retr(&ss, &cmd, true))
		break;
	} else if (strcmp(cmd.verb, "DELE") == 0) {
	    if (sess_args(&ss, &cmd, 1, 1, "DELE msg") && sess_msgno(&ss, cmd.argv[0], &i)) {
		ss.deleted[i] = true;
		ss.ndeleted++;
		ss.total -= store_msg(mb, i)->crlf_size;
		pop3_ok(client, "Message %zu deleted", i + 1);
	    }
	} else if (strcmp(cmd.verb, "RSET") == 0) {
	    if (sess_args(&ss, &cmd, 0, 0, "RSET")) {
		for (i = 0; i < ss.count; i++)
		    if (ss.deleted[i]) {
			ss.deleted[i] = false;
			ss.total += store_msg(mb, i)->crlf_size;
		    }
		ss.ndeleted = 0;
		pop3_ok(client, "%zu messages (%lld octets)", ss.count, (long long) ss.total);
	    }
	} else if (strcmp(cmd.verb, "NOOP") == 0) {
	    if (sess_args(&ss, &cmd, 0, 0, "NOOP"))
		pop3_ok(client, "Nothing done");
	} else if (strcmp(cmd.verb, "QUIT") == 0) {
	    sess_quit(&ss);
	    quit = true;
	} else if (strcmp(cmd.verb, "CAPA") == 0) {
	    pop3_ok(client, "Capability list follows");
	    pop3_capa_common(client);
	    (void) stream_write(client, ".\r\n", 3);
	} else if (strcmp(cmd.verb, "USER") == 0 || strcmp(cmd.verb, "PASS") == 0
		   || strcmp(cmd.verb, "AUTH") == 0 || strcmp(cmd.verb, "APOP") == 0
		   || strcmp(cmd.verb, "STLS") == 0) {
	    pop3_err(client, NULL, "Already logged in");
	} else {
	    pop3_err(client, NULL, "Unknown command");
	}
    }
    (void) stream_flush(client);
    msg_info("disconnect: user=<%s>, client=[%s], retr=%zu/%lld, del=%zu/%zu%s", user, client_addr,
	     ss.retrieved, (long long) ss.retrieved_octets, quit ? ss.ndeleted : 0, ss.count,
	     quit ? "" : ", no QUIT: nothing deleted");
    mem_free(&ss.deleted);
    str_free(&line);
}
