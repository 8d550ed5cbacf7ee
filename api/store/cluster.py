"""The embedded PostGIS cluster: initdb + pg_ctl from the system's PostgreSQL.

With no ``WANGGE_DATABASE_URL``, Wangge keeps its own cluster in a data folder
of its own. Run as root, the server runs as an unprivileged OS user
(``postgres`` when the system package created it, else a ``wangge`` system
user), since initdb refuses to run as root. The server listens on 127.0.0.1 only.

Three roles, each with a random password in a file of its own (mode 0600):

* the cluster superuser ``wangge`` (``credentials``): creates the database, the roles
  and the extensions, and nothing else;
* ``wangge_owner`` (``credentials.owner``): owns the database and its schema, runs the
  migrations and restores (:attr:`Cluster.owner_url`);
* ``wangge_app`` (``credentials.app``): what the server and the CLI use
  (:attr:`Cluster.app_url`); see :mod:`api.store.roles` for what it may do;
* ``wangge_replicator`` (``credentials.replicator``, made by :meth:`Cluster.make_standby`
  only): ``LOGIN REPLICATION`` and nothing else, what a streaming standby connects as.

:meth:`Cluster.make_standby` makes a read replica of a running cluster: a :class:`Standby`
in a data folder of its own, copied with ``pg_basebackup -R`` (standby mode, streaming
from a replication slot) and started on its own port, by the same OS user.

The same code starts the test suite's cluster (``tests/conftest.py``).
"""

from __future__ import annotations

import contextlib
import glob
import grp
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from api.errors import ClusterError

if TYPE_CHECKING:
    import psycopg

SUPERUSER = "wangge"
OWNER = "wangge_owner"
APP = "wangge_app"
REPLICATOR = "wangge_replicator"
DATABASE = "wangge"
#: extensions the schema needs; only a superuser may create them
EXTENSIONS = ("postgis", "pgrouting")


def find_pg_bin(explicit: Path | None = None) -> Path:
    """Find the folder with ``initdb``/``pg_ctl`` of a PostgreSQL that has PostGIS.

    Debian installs them under ``/usr/lib/postgresql/<major>/bin``; the newest
    major version that has the PostGIS extension files wins.
    """
    if explicit is not None:
        if not (explicit / "initdb").exists():
            raise ClusterError(f"no initdb in {explicit} (WANGGE_PG_BIN)")
        return explicit
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(re.sub(r"\D", "", p.split("/")[-2]) or 0),
        reverse=True,
    )
    for c in candidates:
        major = c.split("/")[-2]
        if (Path(c) / "initdb").exists() and glob.glob(
            f"/usr/share/postgresql/{major}/extension/postgis.control"
        ):
            return Path(c)
    initdb = shutil.which("initdb")
    if initdb:
        return Path(os.path.realpath(initdb)).parent
    raise ClusterError(
        "PostgreSQL with PostGIS is not installed: run `scripts/install.sh` "
        "(or apt-get install postgresql-15-postgis-3 postgresql-15-pgrouting), "
        "or set WANGGE_DATABASE_URL to an existing PostGIS server"
    )


def _service_user(explicit: str | None) -> pwd.struct_passwd | None:
    """Find the OS user that runs the server: None when we are not root."""
    if os.geteuid() != 0:
        return None
    names = [explicit] if explicit else ["postgres", "wangge"]
    for name in names:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    name = explicit or "wangge"
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
    )
    return pwd.getpwnam(name)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Tell whether something listens on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def free_port() -> int:
    """Pick a free TCP port on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    """A PostgreSQL cluster owned by Wangge in ``data_dir``.

    Parameters
    ----------
    data_dir
        Folder of its own: ``pgdata/`` (the cluster), ``run/`` (socket),
        ``postgres.log`` and ``credentials`` live there.
    port
        TCP port on 127.0.0.1.
    pg_bin
        Folder with initdb/pg_ctl; found automatically when None.
    fast
        Test clusters trade durability for speed (fsync off). Never for real data.
    """

    data_dir: Path
    port: int
    pg_bin: Path | None = None
    os_user: str | None = None
    fast: bool = False

    def __post_init__(self) -> None:
        """Derive the folders and files from ``data_dir``."""
        self.data_dir = Path(self.data_dir).absolute()
        self.pgdata = self.data_dir / "pgdata"
        self.run_dir = self.data_dir / "run"
        self.log_file = self.data_dir / "postgres.log"
        self.credentials = self.data_dir / "credentials"

    # ------------------------------------------------------------------ helpers
    def _bin(self, name: str) -> str:
        if self.pg_bin is None:
            self.pg_bin = find_pg_bin()
        return str(self.pg_bin / name)

    def _run(
        self, args: list[str], user: pwd.struct_passwd | None, env_extra: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, object] = {}
        if user is not None:
            kwargs = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C.UTF-8"
        env.update(env_extra or {})
        return subprocess.run(
            args,
            capture_output=True,
            text=True,
            env=env,
            cwd="/",
            **kwargs,  # type: ignore[call-overload]
        )

    def password(self, role: str = SUPERUSER) -> str:
        """Read the password of one of the cluster's roles."""
        return self._credentials(role).read_text().strip()

    def _credentials(self, role: str) -> Path:
        suffix = {SUPERUSER: "", OWNER: ".owner", APP: ".app", REPLICATOR: ".replicator"}[role]
        return self.credentials.with_name(self.credentials.name + suffix)

    def url_of(self, role: str, database: str = DATABASE) -> str:
        """SQLAlchemy URL (driver-less) of a database of the cluster, as one of its roles."""
        return f"postgresql://{role}:{quote(self.password(role), safe='')}@127.0.0.1:{self.port}/{database}"

    @property
    def url(self) -> str:
        """The cluster's database as the superuser (cluster administration and tests only)."""
        return self.url_of(SUPERUSER)

    @property
    def owner_url(self) -> str:
        """The cluster's database as the owner role (migrations, restore)."""
        return self.url_of(OWNER)

    @property
    def app_url(self) -> str:
        """The cluster's database as the application role (the server, the CLI)."""
        return self.url_of(APP)

    def is_initialised(self) -> bool:
        """Tell whether the cluster exists (data folder and credentials)."""
        return (self.pgdata / "PG_VERSION").exists() and self.credentials.exists()

    def is_running(self) -> bool:
        """Tell whether the cluster's server runs."""
        pid_file = self.pgdata / "postmaster.pid"
        if not pid_file.exists():
            return False
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0])
            os.kill(pid, 0)
        except (ValueError, ProcessLookupError):
            return False
        except PermissionError:
            return True
        return True

    # ------------------------------------------------------------------ lifecycle
    def _prepare_folder(self, user: pwd.struct_passwd | None) -> None:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self.run_dir.mkdir(exist_ok=True)
            probe = self.data_dir / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise ClusterError(
                f"data folder {self.data_dir} is not writable ({exc.strerror}); "
                "choose another with WANGGE_DATA_DIR"
            ) from exc
        if user is not None:
            # the service user must reach its folders: every parent traversable
            for parent in reversed(self.data_dir.parents):
                if parent == Path("/"):
                    continue
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    os.chmod(parent, mode | 0o001)
            for p in (self.data_dir, self.run_dir):
                os.chown(p, user.pw_uid, user.pw_gid)
                os.chmod(p, 0o700)
            if self.log_file.exists():
                os.chown(self.log_file, user.pw_uid, user.pw_gid)

    def init(self) -> bool:
        """Create the cluster if it does not exist. Returns True when it was created."""
        user = _service_user(self.os_user)
        self._prepare_folder(user)
        if self.is_initialised():
            return False
        if self.pgdata.exists():
            shutil.rmtree(self.pgdata)  # a half-made cluster from an interrupted init
        password = secrets.token_urlsafe(24)
        with tempfile.NamedTemporaryFile("w", dir=self.data_dir, delete=False) as pw:
            pw.write(password + "\n")
        pwfile = Path(pw.name)
        try:
            if user is not None:
                os.chown(pwfile, user.pw_uid, user.pw_gid)
            res = self._run(
                [
                    self._bin("initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    SUPERUSER,
                    "--pwfile",
                    str(pwfile),
                    "--auth",
                    "scram-sha-256",
                    "-E",
                    "UTF8",
                    "--locale",
                    "C.UTF-8",
                ],
                user,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if res.returncode != 0:
            raise ClusterError(f"initdb failed: {res.stderr.strip().splitlines()[-1:]}")
        self.credentials.write_text(password + "\n")
        os.chmod(self.credentials, 0o600)
        conf = [
            "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{self.run_dir}'",
            "max_connections = 200",
            "shared_buffers = 256MB",
            "work_mem = 16MB",
            "maintenance_work_mem = 256MB",
            "max_wal_size = 2GB",
            "jit = off",
        ]
        if self.fast:
            conf += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        with open(self.pgdata / "postgresql.auto.conf", "a") as f:
            f.write("\n".join(conf) + "\n")
        return True

    def start(self, timeout: float = 60.0) -> None:
        """Start the server (initialising it first if needed); no-op when running."""
        self.init()
        if self.is_running():
            return
        if port_in_use(self.port):
            raise ClusterError(
                f"port {self.port} is already in use by another program; "
                "set WANGGE_PG_PORT to a free port (or stop what listens there)"
            )
        user = _service_user(self.os_user)
        if user is not None:
            self.log_file.touch()
            os.chown(self.log_file, user.pw_uid, user.pw_gid)
        res = self._run(
            [
                self._bin("pg_ctl"),
                "-D",
                str(self.pgdata),
                "-l",
                str(self.log_file),
                "-o",
                f"-p {self.port}",
                "-w",
                "-t",
                str(int(timeout)),
                "start",
            ],
            user,
        )
        if res.returncode != 0:
            tail = ""
            with contextlib.suppress(OSError):
                tail = self.log_file.read_text().strip().splitlines()[-1]
            raise ClusterError(f"PostgreSQL did not start: {tail or res.stderr.strip()}")
        self._create_database()

    def _role_password(self, role: str) -> str:
        path = self._credentials(role)
        if not path.exists():
            with tempfile.NamedTemporaryFile("w", dir=self.data_dir, delete=False) as f:
                f.write(secrets.token_urlsafe(24) + "\n")
            os.chmod(f.name, 0o600)
            os.replace(f.name, path)
        return path.read_text().strip()

    def _create_database(self) -> None:
        """Create the roles, the database (owned by the owner role) and its extensions."""
        import psycopg
        from psycopg import sql

        deadline = time.monotonic() + 30
        while True:
            try:
                conn = psycopg.connect(
                    host="127.0.0.1",
                    port=self.port,
                    user=SUPERUSER,
                    password=self.password(),
                    dbname="postgres",
                    autocommit=True,
                )
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        with conn:
            for role in (OWNER, APP):
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
                verb = "ALTER" if exists else "CREATE"
                conn.execute(
                    sql.SQL(
                        verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                        "NOBYPASSRLS PASSWORD {}"
                    ).format(sql.Identifier(role), sql.Literal(self._role_password(role)))
                )
        self.provision(DATABASE)

    def provision(self, dbname: str) -> None:
        """Create database ``dbname`` if missing, owned by the owner role, with the extensions.

        Run as the cluster's superuser (only it may create PostGIS and pgRouting); the demo
        starts a store over in a fresh database made this way.
        """
        import psycopg
        from psycopg import sql

        with psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=SUPERUSER,
            password=self.password(),
            dbname="postgres",
            autocommit=True,
        ) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
            if not exists:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(dbname), sql.Identifier(OWNER)
                    )
                )
            conn.execute(
                sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(dbname), sql.Identifier(OWNER))
            )
        with psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=SUPERUSER,
            password=self.password(),
            dbname=dbname,
            autocommit=True,
        ) as db:
            for ext in EXTENSIONS:
                db.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(ext)))
            db.execute(_HAND_OVER.format(owner=OWNER, superuser=SUPERUSER))

    def stop(self, mode: str = "fast") -> None:
        """Stop the server cleanly (no-op when it is not running)."""
        if not self.is_running():
            return
        user = _service_user(self.os_user)
        res = self._run([self._bin("pg_ctl"), "-D", str(self.pgdata), "-m", mode, "-w", "stop"], user)
        if res.returncode != 0 and self.is_running():
            raise ClusterError(f"pg_ctl stop failed: {res.stderr.strip()}")

    def destroy(self) -> None:
        """Stop and delete the cluster and its folder (tests only)."""
        with contextlib.suppress(ClusterError):
            self.stop("immediate")
        shutil.rmtree(self.data_dir, ignore_errors=True)

    # ------------------------------------------------------------------ replication
    def _superuser_connect(self, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        import psycopg

        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=SUPERUSER,
            password=self.password(),
            dbname=dbname,
            autocommit=True,
        )

    def ensure_replicator(self, slot: str) -> str:
        """Create the replication role (``LOGIN REPLICATION``, nothing else) and a physical slot.

        A slot of that name left inactive by an earlier standby is made anew (it would hold
        WAL from a past position). Returns the role's password.

        Raises
        ------
        ClusterError
            A standby streams from that slot right now.
        """
        from psycopg import sql

        password = self._role_password(REPLICATOR)
        with self._superuser_connect() as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (REPLICATOR,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(
                sql.SQL(
                    verb + " ROLE {} LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS "
                    "PASSWORD {}"
                ).format(sql.Identifier(REPLICATOR), sql.Literal(password))
            )
            row = conn.execute(
                "SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,)
            ).fetchone()
            if row is not None and row[0]:
                raise ClusterError(f"replication slot {slot} is in use by a running standby")
            if row is not None:
                conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
            conn.execute("SELECT pg_create_physical_replication_slot(%s, true)", (slot,))
        return password

    def drop_slot(self, slot: str) -> None:
        """Drop a replication slot when it exists and no standby uses it (frees the WAL it holds)."""
        with self._superuser_connect() as conn:
            conn.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                "WHERE slot_name = %s AND NOT active",
                (slot,),
            )

    def make_standby(self, data_dir: Path, port: int, slot: str | None = None) -> Standby:
        """Describe a streaming standby (read replica) of this cluster; :meth:`Standby.start` makes it.

        Parameters
        ----------
        data_dir
            The standby's own folder (like this cluster's: ``pgdata/``, ``run/``, log,
            credentials, which are this cluster's: a physical copy has the same roles).
        port
            The standby's TCP port on 127.0.0.1.
        slot
            The physical replication slot it streams from (default ``wangge_standby_<port>``):
            the primary keeps the WAL a stopped standby still needs.
        """
        return Standby(
            data_dir=data_dir,
            port=port,
            pg_bin=self.pg_bin,
            os_user=self.os_user,
            fast=self.fast,
            primary=self,
            slot=slot or f"wangge_standby_{port}",
        )


@dataclass
class Standby(Cluster):
    """A hot standby of a :class:`Cluster`: ``pg_basebackup -R`` into its own folder, then streaming.

    It answers read-only queries (``hot_standby``) with the primary's roles and passwords.
    :meth:`start` copies the primary on first use (the primary must run), then starts the
    standby on its own port as the same OS user as the primary (never root).
    """

    primary: Cluster | None = None
    slot: str = "wangge_standby"

    def _primary(self) -> Cluster:
        if self.primary is None or not self.primary.is_running():
            raise ClusterError("a standby is copied from a running primary cluster")
        return self.primary

    def init(self) -> bool:
        """Copy the primary with ``pg_basebackup -R`` unless done before; True when copied now."""
        user = _service_user(self.os_user)
        self._prepare_folder(user)
        if self.is_initialised():
            return False
        primary = self._primary()
        if self.pgdata.exists():
            shutil.rmtree(self.pgdata)  # a half-made copy from an interrupted backup
        password = primary.ensure_replicator(self.slot)
        res = self._run(
            [
                self._bin("pg_basebackup"),
                "-D",
                str(self.pgdata),
                "-h",
                "127.0.0.1",
                "-p",
                str(primary.port),
                "-U",
                REPLICATOR,
                "--no-password",
                "-R",  # standby.signal + primary_conninfo
                "-X",
                "stream",
                "-S",
                self.slot,
                "-c",
                "fast",
            ],
            user,
            {"PGPASSWORD": password},
        )
        if res.returncode != 0:
            shutil.rmtree(self.pgdata, ignore_errors=True)
            raise ClusterError(f"pg_basebackup failed: {res.stderr.strip().splitlines()[-1:]}")
        conf = [
            f"unix_socket_directories = '{self.run_dir}'",  # the copy names the primary's folder
            "hot_standby = on",
            "hot_standby_feedback = on",  # long replica reads are not cancelled by the primary's vacuum
        ]
        with open(self.pgdata / "postgresql.auto.conf", "a") as f:
            f.write("\n".join(conf) + "\n")
        if user is not None:
            os.chown(self.pgdata / "postgresql.auto.conf", user.pw_uid, user.pw_gid)
        for role in (OWNER, APP, REPLICATOR, SUPERUSER):  # the superuser's file last: it marks "done"
            source = primary._credentials(role)
            if source.exists():
                target = self._credentials(role)
                shutil.copyfile(source, target)
                os.chmod(target, 0o600)
        return True

    def _create_database(self) -> None:
        """Wait until the standby accepts connections (it is read-only: nothing to create)."""
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                self._superuser_connect().close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def destroy(self) -> None:
        """Stop and delete the standby and drop its slot on the primary (tests only)."""
        super().destroy()
        if self.primary is not None and self.primary.is_running():
            with contextlib.suppress(Exception):
                self.primary.drop_slot(self.slot)


def group_name(gid: int) -> str:
    """Return the name of a group id."""
    return grp.getgrgid(gid).gr_name


#: Hands the schema's objects that a cluster made before the owner role existed still gives
#: to the superuser over to the owner role (extension members and linked sequences stay).
_HAND_OVER = """
DO $$
DECLARE
  r record;
  owner_role text := '{owner}';
  su oid := (SELECT oid FROM pg_roles WHERE rolname = '{superuser}');
BEGIN
  FOR r IN SELECT n.nspname FROM pg_namespace n
           WHERE n.nspname IN ('public', 'ogc') AND n.nspowner = su AND n.nspname <> 'public'
  LOOP
    EXECUTE format('ALTER SCHEMA %I OWNER TO %I', r.nspname, owner_role);
  END LOOP;
  FOR r IN SELECT c.oid::regclass AS obj, c.relkind FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname IN ('public', 'ogc') AND c.relowner = su
             AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                             AND d.objid = c.oid AND d.deptype IN ('e', 'a', 'i'))
  LOOP
    IF r.relkind = 'S' THEN
      EXECUTE format('ALTER SEQUENCE %s OWNER TO %I', r.obj, owner_role);
    ELSIF r.relkind IN ('v') THEN
      EXECUTE format('ALTER VIEW %s OWNER TO %I', r.obj, owner_role);
    ELSIF r.relkind = 'm' THEN
      EXECUTE format('ALTER MATERIALIZED VIEW %s OWNER TO %I', r.obj, owner_role);
    ELSE
      EXECUTE format('ALTER TABLE %s OWNER TO %I', r.obj, owner_role);
    END IF;
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS fn FROM pg_proc p
           JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname IN ('public', 'ogc') AND p.proowner = su
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                             AND d.objid = p.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('ALTER ROUTINE %s OWNER TO %I', r.fn, owner_role);
  END LOOP;
END $$
"""
