/* SPDX-License-Identifier: MIT */
/* resolv.conf: reading it, and --install/--uninstall on scratch files
 * (never /etc/resolv.conf). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dnsresolv.h"
#include "t.h"
#include "util.h"

static char dir[64];

static void
put(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	if (fd < 0 || mk_write_all(fd, text, strlen(text)) != 0 ||
	    fchmod(fd, mode) != 0)
		perror(path);
	if (fd >= 0)
		close(fd);
}

static char *
get(const char *path)
{
	static char buf[8192];
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return NULL;
	n = mk_read_small(fd, buf, sizeof(buf));
	close(fd);
	return n < 0 ? NULL : buf;
}

static void
test_parse(void)
{
	static const char text[] =
	    "# a comment\n"
	    "; another\n"
	    "nameserver 192.0.2.53\n"
	    "nameserver   2001:db8::53  # trailing\n"
	    "nameserver not-an-address\n"
	    "domain old.example\n"
	    "search a.example\tb.example\n"
	    "options ndots:2 edns0\n"
	    "options\n"
	    "sortlist 192.0.2.0/255.255.255.0\n"
	    "nameserver 192.0.2.54";
	struct mk_resolv r;
	char a[MK_ADDRSTRLEN];

	mk_resolv_parse(&r, text, sizeof(text) - 1);
	REQUIRE_VOID(r.n_ns == 3);
	CHECK_STR(mk_addr_fmt(&r.ns[0], a, sizeof(a)), "192.0.2.53:53");
	CHECK_STR(mk_addr_fmt(&r.ns[1], a, sizeof(a)), "[2001:db8::53]:53");
	CHECK_STR(mk_addr_fmt(&r.ns[2], a, sizeof(a)), "192.0.2.54:53");
	/* the last of search and domain wins */
	REQUIRE_VOID(r.n_search == 2);
	CHECK_STR(r.search[0], "a.example");
	CHECK_STR(r.search[1], "b.example");
	CHECK_STR(r.options, "options ndots:2 edns0\n");
	CHECK(!r.ours);

	mk_resolv_parse(&r, MK_RESOLV_MARKER "\nnameserver 100.100.100.100\n",
	    sizeof(MK_RESOLV_MARKER) + 26);
	CHECK(r.ours && r.n_ns == 1);
	mk_resolv_parse(&r, "", 0);
	CHECK(r.n_ns == 0 && r.n_search == 0);
}

static void
test_install(void)
{
	static const char orig[] =
	    "# the original, byte for byte\n"
	    "nameserver 192.0.2.53\n"
	    "search example.org\n"
	    "options timeout:1\n"
	    "no newline at the end";
	char path[128], backup[128], err[512], *s;
	struct mk_resolv r;
	struct stat st;

	snprintf(path, sizeof(path), "%s/resolv.conf", dir);
	REQUIRE_VOID(mk_resolv_backup_path(backup, sizeof(backup), dir,
	    "state/x") == -1);
	REQUIRE_VOID(mk_resolv_backup_path(backup, sizeof(backup), dir,
	    "ns1") == 0);
	put(path, orig, 0640);

	/* nothing installed: nothing to undo */
	CHECK(mk_resolv_uninstall(path, backup, err, sizeof(err)) == 1);

	REQUIRE_VOID(mk_resolv_install(path, backup, "100.100.100.100",
	    "mesh.example", err, sizeof(err)) == 0);
	s = get(backup);
	REQUIRE_VOID(s != NULL);
	CHECK_STR(s, orig);
	REQUIRE_VOID(stat(backup, &st) == 0);
	/* the backup is ours alone, whatever the original's mode */
	CHECK((st.st_mode & 07777) == 0600 && st.st_uid == geteuid());
	REQUIRE_VOID(mk_resolv_load(&r, path) == 0);
	CHECK(r.ours);
	CHECK(r.n_ns == 1);
	CHECK(r.n_search == 2);
	CHECK_STR(r.search[0], "mesh.example");
	CHECK_STR(r.search[1], "example.org");
	CHECK_STR(r.options, "options timeout:1\n");
	REQUIRE_VOID(stat(path, &st) == 0);
	CHECK((st.st_mode & 07777) == 0640);

	/* installing again (after a crash) keeps the real original */
	REQUIRE_VOID(mk_resolv_install(path, backup, "100.100.100.100",
	    "mesh.example", err, sizeof(err)) == 0);
	CHECK_STR(get(backup), orig);

	/* a backup with another owner and mode: the restored file keeps
	 * the original's (the file in place has them), never the backup's */
	CHECK(chmod(backup, 0666) == 0);
	if (geteuid() == 0)
		CHECK(chown(backup, 65534, 65534) == 0);
	REQUIRE_VOID(mk_resolv_uninstall(path, backup, err, sizeof(err)) ==
	    0);
	CHECK_STR(get(path), orig);
	REQUIRE_VOID(stat(path, &st) == 0);
	CHECK((st.st_mode & 07777) == 0640);
	CHECK(st.st_uid == geteuid() && st.st_gid == getegid());
	CHECK(access(backup, F_OK) != 0 && errno == ENOENT);
	CHECK(mk_resolv_uninstall(path, backup, err, sizeof(err)) == 1);

	/* someone rewrote it meanwhile: left alone, backup kept */
	REQUIRE_VOID(mk_resolv_install(path, backup, "127.0.0.1", NULL, err,
	    sizeof(err)) == 0);
	REQUIRE_VOID(mk_resolv_load(&r, path) == 0);
	CHECK(r.n_search == 1);		/* only the original's */
	put(path, "nameserver 192.0.2.99\n", 0644);
	CHECK(mk_resolv_uninstall(path, backup, err, sizeof(err)) == -1);
	CHECK(strstr(err, "changed by someone else") != NULL);
	CHECK_STR(get(path), "nameserver 192.0.2.99\n");
	CHECK_STR(get(backup), orig);
	unlink(backup);

	/* a symbolic link (systemd-resolved's stub) is not touched */
	unlink(path);
	CHECK(symlink("/run/somewhere/stub-resolv.conf", path) == 0);
	CHECK(mk_resolv_install(path, backup, "100.100.100.100", NULL, err,
	    sizeof(err)) == -1);
	CHECK(strstr(err, "symbolic link") != NULL);
	CHECK(access(backup, F_OK) != 0);
	unlink(path);
	/* no file at all */
	CHECK(mk_resolv_install(path, backup, "100.100.100.100", NULL, err,
	    sizeof(err)) == -1);
	REQUIRE_VOID(mk_resolv_load(&r, path) == 0);
	CHECK(r.n_ns == 0);
}

/* A state directory someone else can write is refused, both ways. */
static void
test_state_dir(void)
{
	char sd[160], path[128], backup[200], err[512];

	snprintf(path, sizeof(path), "%s/resolv.conf", dir);
	snprintf(sd, sizeof(sd), "%s/open", dir);
	REQUIRE_VOID(mkdir(sd, 0700) == 0 && chmod(sd, 0777) == 0);
	REQUIRE_VOID(mk_resolv_backup_path(backup, sizeof(backup), sd,
	    "ns1") == 0);
	put(path, "nameserver 192.0.2.53\n", 0644);
	CHECK(mk_resolv_check_dir(sd, err, sizeof(err)) == -1);
	CHECK(mk_resolv_install(path, backup, "100.100.100.100", NULL, err,
	    sizeof(err)) == -1);
	CHECK(strstr(err, "writable by anyone; refusing it") != NULL);
	CHECK_STR(get(path), "nameserver 192.0.2.53\n");
	CHECK(access(backup, F_OK) != 0);
	/* a backup planted there is not restored */
	put(backup, "nameserver 203.0.113.66\n", 0644);
	put(path, MK_RESOLV_MARKER "\nnameserver 100.100.100.100\n", 0644);
	CHECK(mk_resolv_uninstall(path, backup, err, sizeof(err)) == -1);
	CHECK_STR(get(path), MK_RESOLV_MARKER "\nnameserver 100.100.100.100\n");
	/* group-writable: refused too; private: fine */
	CHECK(chmod(sd, 0770) == 0);
	CHECK(mk_resolv_check_dir(sd, err, sizeof(err)) == -1);
	CHECK(strstr(err, "writable by its group") != NULL);
	CHECK(chmod(sd, 0755) == 0);
	CHECK(mk_resolv_check_dir(sd, err, sizeof(err)) == 0);
	/* owned by another user */
	if (geteuid() == 0) {
		CHECK(chown(sd, 65534, 65534) == 0);
		CHECK(mk_resolv_check_dir(sd, err, sizeof(err)) == -1);
		CHECK(strstr(err, "belongs to uid 65534") != NULL);
	}
	unlink(backup);
	CHECK(mk_resolv_check_dir("/nonexistent/x", err, sizeof(err)) == -1);
}

static void
test_netns(void)
{
	char name[256];

	/* the test runs in some namespace; a name comes back either way */
	CHECK(mk_netns_name(name, sizeof(name)) == 0);
	CHECK(name[0] != '\0' && strchr(name, '/') == NULL);
}

int
main(void)
{
	char cmd[128];

	snprintf(dir, sizeof(dir), "/tmp/test_dnsresolv.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_parse();
	test_install();
	test_state_dir();
	test_netns();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return t_done("dnsresolv");
}
