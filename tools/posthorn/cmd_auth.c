/* cmd_auth - posthorn users, posthorn pw and posthorn auth test: the
 * operator's side of the users table (users(5), auth(8)).
 *
 *   posthorn users [type:]FILE    build FILE.auth (auth_user_maps; mode
 *                                 0600, owner auth_user when root) and
 *                                 FILE.mailbox (virtual_mailbox_maps)
 *   posthorn pw [-s] [-S scheme]  a password hash (auth_password_scheme
 *                                 unless -S), and with -s the SCRAM-SHA-256
 *                                 secret on a second line; the password
 *                                 comes from the terminal (asked twice,
 *                                 without echo) or the first line of stdin
 *   posthorn auth test USER       check USER's password against the auth
 *                                 table and say why it fails: unlike the
 *                                 network answer, this tells "no such
 *                                 user" from "wrong password" (it needs to
 *                                 read the table: run it as root) */

/* System library. */
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* Base library. */
#include "msg.h"
#include "privs.h"
#include "str.h"

/* Mail library. */
#include "config.h"
#include "maps.h"
#include "passwd.h"
#include "table.h"
#include "users.h"

/* This program. */
#include "posthorn.h"

#define PW_MAX	1024

/* pw_read_line - one line from fp without its newline; false at EOF */
static bool pw_read_line(FILE *fp, char *buf, size_t size)
{
    size_t len;

    if (fgets(buf, (int) size, fp) == NULL)
	return false;
    len = strlen(buf);
    if (len && buf[len - 1] == '\n')
	buf[--len] = 0;
    if (len && buf[len - 1] == '\r')
	buf[--len] = 0;
    return true;
}

/* pw_prompt - ask on the terminal without echo */
static bool pw_prompt(const char *prompt, char *buf, size_t size)
{
    struct termios old, noecho;
    FILE *tty = fopen("/dev/tty", "r+");
    bool ok;

    if (tty == NULL)
	return pw_read_line(stdin, buf, size);
    fputs(prompt, tty);
    fflush(tty);
    if (tcgetattr(fileno(tty), &old) == 0) {
	noecho = old;
	noecho.c_lflag &= ~(tcflag_t) ECHO;
	(void) tcsetattr(fileno(tty), TCSAFLUSH, &noecho);
    }
    ok = pw_read_line(tty, buf, size);
    (void) tcsetattr(fileno(tty), TCSAFLUSH, &old);
    fputs("\n", tty);
    fclose(tty);
    return ok;
}

/* pw_get - the password: prompted (twice if confirm) on a terminal, else
 * the first line of stdin */
static bool pw_get(char *buf, size_t size, bool confirm)
{
    char again[PW_MAX];

    if (!isatty(STDIN_FILENO)) {
	if (!pw_read_line(stdin, buf, size)) {
	    ph_error("no password on standard input");
	    return false;
	}
	return true;
    }
    if (!pw_prompt("Password: ", buf, size))
	return false;
    if (confirm) {
	if (!pw_prompt("Again: ", again, sizeof(again)))
	    return false;
	if (strcmp(buf, again) != 0) {
	    explicit_bzero(again, sizeof(again));
	    ph_error("the passwords differ");
	    return false;
	}
	explicit_bzero(again, sizeof(again));
    }
    return true;
}

/* cmd_pw - posthorn pw [-s] [-S scheme] */
int cmd_pw(int argc, char **argv)
{
    const char *scheme = NULL, *error;
    bool scram = false;
    char password[PW_MAX];
    struct str *out = str_new(1024);
    int ch, rc = 1;

    while ((ch = getopt(argc, argv, "+sS:")) != -1) {
	switch (ch) {
	case 's':
	    scram = true;
	    break;
	case 'S':
	    scheme = optarg;
	    break;
	default:
	    str_free(&out);
	    return ph_usage("pw");
	}
    }
    if (argc != optind) {
	str_free(&out);
	return ph_usage("pw");
    }
    (void) ph_load_config(true);
    if (scheme == NULL)
	scheme = var_auth_password_scheme;
    if (!pw_get(password, sizeof(password), true)) {
	str_free(&out);
	return 1;
    }
    if (*password == 0)
	ph_error("empty password");
    else if (passwd_hash_make(scheme, password, out, &error) < 0)
	ph_error("%s", error);
    else {
	printf("%s\n", str_cstr(out));
	if (scram && passwd_scram_make(password, var_auth_scram_iterations, out, &error) < 0)
	    ph_error("%s", error);
	else {
	    if (scram)
		printf("%s\n", str_cstr(out));
	    rc = 0;
	}
    }
    explicit_bzero(password, sizeof(password));
    str_free(&out);
    fflush(stdout);
    return rc;
}

/* cmd_users - posthorn users [type:]FILE */
int cmd_users(int argc, char **argv)
{
    const char *default_type, *error;
    uid_t uid = (uid_t) -1;
    gid_t gid = (gid_t) -1;
    size_t count = 0;

    if (argc != 2 || argv[1][0] == '-')
	return ph_usage("users");
    (void) ph_load_config(true);
    default_type = var_default_database_type && *var_default_database_type ?
	var_default_database_type : TABLE_DEFAULT_TYPE;
    if (geteuid() == 0 && !priv_lookup(var_auth_user, &uid, &gid)) {
	ph_error("auth_user %s: no such user", var_auth_user);
	return 1;
    }
    if (users_build(argv[1], default_type, uid, gid, &count, &error) < 0) {
	ph_error("%s", error);
	return 1;
    }
    if (msg_verbose)
	msg_info("%s: %zu accounts", argv[1], count);
    return 0;
}

/* auth_test - posthorn auth test USER */
static int auth_test(const char *user)
{
    struct maps *maps;
    struct str *value = str_new(TABLE_ENTRY_MAX), *key = str_new(1024);
    struct users_entry e;
    struct passwd_scram scram;
    char password[PW_MAX];
    const char *error;
    int found, rc = 1;

    if (!*var_auth_user_maps) {
	ph_error("auth_user_maps is empty");
	goto out;
    }
    if (!str_try_set(key, user)) {
	ph_error("user name too long");
	goto out;
    }
    str_lower(key);
    maps = maps_from_param("auth_user_maps", var_auth_user_maps, 0);
    found = maps_lookup(maps, str_cstr(key), value, NULL, &error);
    maps_free(&maps);
    if (found < 0) {
	ph_error("%s", error);
	goto out;
    }
    if (found == 0) {
	printf("%s: no such user in auth_user_maps\n", str_cstr(key));
	goto out;
    }
    if (users_parse_fields((char *) str_cstr(value), &e, &error) < 0) {
	printf("%s: bad entry in auth_user_maps: %s\n", str_cstr(key), error);
	goto out;
    }
    if (!pw_get(password, sizeof(password), false))
	goto out;
    if (e.locked)
	printf("%s: account locked or disabled (password \"%.1s...\"%s)\n", str_cstr(key),
	       e.password, *e.password ? "" : ", empty");
    else if (!passwd_hash_usable(e.password))
	printf("%s: the password hash is of a kind libcrypt does not know\n", str_cstr(key));
    else if (!passwd_hash_check(password, e.password))
	printf("%s: wrong password\n", str_cstr(key));
    else {
	printf("%s: password ok; mailbox %s%s%s\n", str_cstr(key),
	       e.mail_location[0] == '/' ? "" : var_virtual_mailbox_base,
	       e.mail_location[0] == '/' ? "" : "/", e.mail_location);
	rc = 0;
    }
    if (*e.scram == 0) {
	printf("%s: no SCRAM-SHA-256 secret (SCRAM-SHA-256 logins are refused)\n", str_cstr(key));
    } else if (passwd_scram_parse(e.scram, &scram, &error) < 0) {
	printf("%s: bad SCRAM-SHA-256 secret: %s\n", str_cstr(key), error);
    } else {
	unsigned char stored[PASSWD_SHA256_LEN], server[PASSWD_SHA256_LEN];

	if (passwd_scram_keys(password, scram.salt, scram.salt_len, scram.iterations, stored,
			      server, &error) < 0)
	    printf("%s: SCRAM-SHA-256: %s\n", str_cstr(key), error);
	else
	    printf("%s: SCRAM-SHA-256 secret %s the password\n", str_cstr(key),
		   passwd_equal(stored, scram.stored_key, sizeof(stored))
		   && passwd_equal(server, scram.server_key, sizeof(server))
		   ? "matches" : "does NOT match");
    }
    explicit_bzero(password, sizeof(password));
  out:
    str_free(&value);
    str_free(&key);
    fflush(stdout);
    return rc;
}

/* cmd_auth - posthorn auth test USER */
int cmd_auth(int argc, char **argv)
{
    if (argc != 3 || strcmp(argv[1], "test") != 0)
	return ph_usage("auth");
    (void) ph_load_config(true);
    return auth_test(argv[2]);
}
