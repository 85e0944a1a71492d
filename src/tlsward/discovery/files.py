"""Walk directories for certificate and key files: what is there, which key goes with which certificate, and
what is wrong (unreadable files, keys that do not match their certificate, keys other users can read).

Why it is shaped like this: the inventory imports 100,000 files in a minute on two cores, so the walk uses
``os.scandir`` (file types without a ``stat`` per entry), opens only names that can hold certificate material
(by extension, or extension-less files that start with ``-----BEGIN`` or a Java keystore's magic number),
reads each file once through one descriptor (``open`` + ``fstat``: no race between the check and the read,
and a FIFO is never blocked on), parses each inode once even when symlinks show it under several names
(certbot's ``live/``), and drops the bytes as soon as they are parsed. One bad file is a :class:`FileProblem`,
never the end of the walk; the result is sorted by path, so two walks of the same tree give the same answer.
"""

from __future__ import annotations

import dataclasses
import errno
import grp
import os
import re
import shlex
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

from tlsward.model.discovery import FileProblem, FileScan, FoundCertificate, FoundKey
from tlsward.x509.files import ParsedFile, file_problem, parse_file

__all__ = [
    "CANDIDATE_EXTENSIONS",
    "DEFAULT_MAX_FILE_BYTES",
    "KeyPairing",
    "obvious_partners",
    "pair_keys",
    "scan_paths",
]

CANDIDATE_EXTENSIONS = frozenset({
    ".pem", ".crt", ".cer", ".der", ".key", ".p12", ".pfx", ".jks", ".jceks", ".keystore", ".truststore",
    ".ks", ".p7b", ".p7c",
})
# Extensions that other tools use too (DNSSEC writes ``K*.key`` text files, Keynote ``.key`` archives): content in
# no format we read is skipped quietly there instead of being reported as a broken certificate.
_SHARED_EXTENSIONS = frozenset({".key", ""})
DEFAULT_MAX_FILE_BYTES = 8 * 1024 * 1024   # a large CA bundle is 250 KB, a big keystore a few MB
_SNIFF_BYTES = 64
_KEYSTORE_MAGIC = (b"\xfe\xed\xfe\xed", b"\xce\xce\xce\xce")   # JKS, JCEKS: Java's cacerts has no extension
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
_KEY_STEM = re.compile(r"(?P<base>.*?)(?P<sep>[-_.]?)(?:private[-_.]?key|privkey|key)", re.IGNORECASE)
_CERTBOT_KEY = re.compile(r"privkey(?P<n>\d*)\.pem")


@dataclass(frozen=True, slots=True)
class KeyPairing:
    """A private key and every certificate found for its public key (empty: an orphan key)."""

    key: FoundKey
    certificates: tuple[FoundCertificate, ...]


@dataclass(frozen=True, slots=True)
class _Seen:
    """One file read: what it held and the ``stat`` facts the checks after the walk need."""

    parsed: ParsedFile
    mode: int
    gid: int
    inode: tuple[int, int]


def scan_paths(
    paths: Iterable[str | os.PathLike[str]],
    *,
    password: str | bytes | None = None,
    passwords: Sequence[str | bytes] = (),
    follow_symlinks: bool = False,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    on_problem: Callable[[FileProblem], None] | None = None,
) -> FileScan:
    """Every certificate and private key under ``paths`` (directories are walked, files read as given).

    ``password``/``passwords`` are tried on encrypted keys, PKCS#12 files and keystores. ``follow_symlinks``
    descends into symlinked directories (each directory once, so loops end); symlinks to files are always
    read, because that is how certbot and Kubernetes lay certificates out. ``on_problem`` sees each problem as
    it is found, for progress output; the returned :class:`FileScan` holds them all, sorted.
    """
    walk = _Walk(tuple(([password] if password is not None else []) + list(passwords)), follow_symlinks,
                 max_file_bytes, on_problem)
    for raw in paths:
        walk.root(os.path.normpath(Path(raw).absolute()))
    for path in sorted(walk.candidates):
        walk.read(path, sniff=walk.candidates[path])
    walk.check_exposure()
    walk.check_pairs()
    return FileScan(
        certificates=tuple(sorted((c for s in walk.seen.values() for c in s.parsed.certificates),
                                  key=lambda c: (c.path, c.index))),
        keys=tuple(sorted((k for s in walk.seen.values() for k in s.parsed.keys), key=lambda k: (k.path, k.index))),
        problems=tuple(sorted(walk.problems, key=lambda p: (p.path, p.line or 0, p.finding.id, p.finding.evidence))),
        files_seen=walk.files_seen,
    )


def pair_keys(scan: FileScan) -> tuple[KeyPairing, ...]:
    """Each key with the certificates (in any file) that carry its public key, by ``spki_sha256`` equality."""
    by_spki: dict[str, list[FoundCertificate]] = {}
    for certificate in scan.certificates:
        by_spki.setdefault(certificate.facts.spki_sha256, []).append(certificate)
    return tuple(KeyPairing(key, tuple(by_spki.get(key.spki_sha256, ()))) for key in scan.keys)


def obvious_partners(key_path: str) -> tuple[str, ...]:
    """The certificate files a person would expect next to a key file, by name, most likely first.

    ``site.key`` → ``site.crt``/``site.pem``/``site.cer``; ``site-key.pem`` → ``site-cert.pem``, ``site.crt``...;
    certbot's ``privkey.pem`` → ``cert.pem`` and ``fullchain.pem`` (``privkey3.pem`` → ``cert3.pem``... in
    ``archive/``). Whether the files exist is the caller's business.
    """
    path = PurePath(key_path)
    name, stem = path.name, path.stem
    names: list[str] = []
    if (certbot := _CERTBOT_KEY.fullmatch(name)) is not None:
        names += [f"cert{certbot['n']}.pem", f"fullchain{certbot['n']}.pem"]
    names += [stem + e for e in (".crt", ".pem", ".cer", ".der")]
    if (marked := _KEY_STEM.fullmatch(stem)) is not None:
        base, sep = marked["base"], marked["sep"]
        for word in ("cert", "crt", "certificate", "fullchain"):
            names += [f"{base}{sep}{word}{e}" for e in (".pem", ".crt")]
        if base:
            names += [base + e for e in (".crt", ".pem", ".cer")]
    unique = [n for n in dict.fromkeys(names) if n != name]
    return tuple(str(path.with_name(n)) for n in unique)


class _Walk:
    """The state of one :func:`scan_paths` call."""

    def __init__(self, passwords: tuple[str | bytes, ...], follow_symlinks: bool, max_file_bytes: int,
                 on_problem: Callable[[FileProblem], None] | None) -> None:
        self.passwords = passwords
        self.follow_symlinks = follow_symlinks
        self.max_file_bytes = max_file_bytes
        self.on_problem = on_problem
        self.candidates: dict[str, bool] = {}          # path -> read only if it starts like PEM or a keystore
        self.explicit: set[str] = set()                # files named in paths: reported whatever they hold
        self.visited: set[tuple[int, int]] = set()     # directories, when following symlinks
        self.seen: dict[str, _Seen] = {}
        self.by_inode: dict[tuple[int, int, int, int], ParsedFile] = {}
        self.problems: list[FileProblem] = []
        self.files_seen = 0

    def problem(self, problem: FileProblem) -> None:
        self.problems.append(problem)
        if self.on_problem is not None:
            self.on_problem(problem)

    # --- finding the files -----------------------------------------------------------------------------------

    def root(self, path: str) -> None:
        try:
            info = Path(path).stat()
        except OSError as exc:
            self.unreadable(path, exc)
            return
        if stat.S_ISDIR(info.st_mode):
            self.walk(path, info)
        else:
            self.candidates[path] = False   # named on purpose: read whatever its name
            self.explicit.add(path)

    def walk(self, root: str, info: os.stat_result) -> None:
        """Depth first in name order. Symlinked directories (only when following) wait until the real tree is
        done, so a file reachable both ways is reported under its real path; each directory is walked once."""
        if self.follow_symlinks:
            if (info.st_dev, info.st_ino) in self.visited:
                return
            self.visited.add((info.st_dev, info.st_ino))
        stack = [root]
        linked: list[str] = []
        while stack or linked:
            if not stack:
                self.enter_link(linked.pop(0), stack)
                continue
            directory = stack.pop()
            try:
                with os.scandir(directory) as listing:
                    entries = list(listing)
            except OSError as exc:
                self.unreadable(directory, exc, directory=True)
                continue
            subdirectories: list[str] = []
            for entry in entries:
                try:
                    kind = self.classify(entry)
                except OSError:
                    kind = "file"    # cannot even stat it: reading it reports why
                if kind == "directory":
                    subdirectories.append(entry.path)
                elif kind == "link":
                    linked.append(entry.path)
                elif kind == "file":
                    extension = _extension(entry.name)
                    if extension in CANDIDATE_EXTENSIONS:
                        self.candidates.setdefault(entry.path, False)
                    elif not extension:
                        self.candidates.setdefault(entry.path, True)
            stack.extend(sorted(subdirectories, reverse=True))
            linked.sort()

    def classify(self, entry: os.DirEntry[str]) -> str:
        """``directory`` (descend now), ``link`` (a symlinked directory to descend later, when following),
        ``file`` (a regular file, or a symlink that is not to a directory: dangling links and loops are reported
        when read) or ``skip`` (FIFOs, sockets, devices, directories already walked)."""
        if entry.is_symlink():
            if not entry.is_dir():
                return "file"
            return "link" if self.follow_symlinks else "skip"
        if entry.is_dir(follow_symlinks=False):
            if self.follow_symlinks:
                info = entry.stat(follow_symlinks=False)
                if (info.st_dev, info.st_ino) in self.visited:
                    return "skip"
                self.visited.add((info.st_dev, info.st_ino))
            return "directory"
        return "file" if entry.is_file(follow_symlinks=False) else "skip"

    def enter_link(self, path: str, stack: list[str]) -> None:
        """Walk a symlinked directory unless its target has been walked already (this ends symlink loops)."""
        try:
            info = Path(path).stat()
        except OSError:
            return   # it went away, or loops on itself: nothing to walk
        if (info.st_dev, info.st_ino) not in self.visited:
            self.visited.add((info.st_dev, info.st_ino))
            stack.append(path)

    # --- reading them --------------------------------------------------------------------------------------

    def read(self, path: str, *, sniff: bool) -> None:
        """Open, check, read and parse one file; ``sniff``: only if it starts like PEM or a Java keystore (quietly
        skip it if not)."""
        try:
            descriptor = os.open(path, _OPEN_FLAGS)
        except OSError as exc:
            if not sniff:
                self.unreadable(path, exc)
            return
        try:
            seen = self.parse(descriptor, path, sniff)
        except OSError as exc:
            self.unreadable(path, exc)
            return
        finally:
            os.close(descriptor)
        if seen is None:
            return
        self.seen[path] = seen
        for problem in seen.parsed.problems:
            self.problem(problem)

    def parse(self, descriptor: int, path: str, sniff: bool) -> _Seen | None:
        """What the open file holds; None when it is no file of ours (not regular, not PEM, over the limit)."""
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            return None
        head = b""
        if sniff:
            head = os.read(descriptor, _SNIFF_BYTES)
            if not (head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"-----BEGIN") or head[:4] in _KEYSTORE_MAGIC):
                return None
        self.files_seen += 1
        if info.st_size > self.max_file_bytes:
            self.too_large(path, info.st_size)
            return None
        mode = stat.S_IMODE(info.st_mode)
        cache_key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
        parsed = self.by_inode.get(cache_key)
        if parsed is not None:
            parsed = _moved(parsed, path, mode)
        else:
            data = _read_rest(descriptor, head, info.st_size, self.max_file_bytes)
            if data is None:
                self.too_large(path, self.max_file_bytes + 1)
                return None
            extension = _extension(path)
            parsed = parse_file(path, data, passwords=self.passwords, mode=mode, hint=extension)
            if (parsed.format is None and data and path not in self.explicit
                    and (extension in _SHARED_EXTENSIONS or _is_text(data))):
                # A .key file in no format we read is someone else's (DNSSEC, licence keys), and a text file
                # without a single PEM block holds no certificate (Debian's placeholder postgresql-common/root.crt).
                parsed = dataclasses.replace(parsed, problems=())
            del data
            if not parsed.problems and parsed.format is not None:
                self.by_inode[cache_key] = parsed
        return _Seen(parsed, mode, info.st_gid, (info.st_dev, info.st_ino))

    # --- what is wrong -------------------------------------------------------------------------------------

    def unreadable(self, path: str, exc: OSError, *, directory: bool = False) -> None:
        quoted = shlex.quote(path)
        fix = ("run discovery as a user that may read it (root, or the service's group), or grant read access: "
               f"`setfacl -m u:$(id -un):r{'x' if directory else ''} {quoted}`")
        if exc.errno == errno.ENOENT and Path(path).is_symlink():
            target = _readlink(path)
            what = f"dangling symlink: it points to {target}, which does not exist"
            fix = f"point the link at the file it should name (`ln -sfn NEW-TARGET {quoted}`) or remove it"
        elif exc.errno == errno.ENOENT:
            what = "does not exist"
            fix = "check the path"
        elif exc.errno == errno.ELOOP:
            what = f"symlink loop: resolving it leads back to itself (it points to {_readlink(path)})"
            fix = f"point the link at a real file (`ln -sfn NEW-TARGET {quoted}`) or remove it"
        elif exc.errno in (errno.EACCES, errno.EPERM):
            subject = "cannot list the directory" if directory else "cannot read the file"
            what = f"{subject}: permission denied to uid {os.geteuid()}{_owner(path)}"
        else:
            what = f"cannot be read: {exc.strerror or exc}"
        self.problem(file_problem("file.unreadable", path, what, confirm=f"namei -l {quoted}", fix=fix))

    def too_large(self, path: str, size: int) -> None:
        quoted = shlex.quote(path)
        self.problem(file_problem(
            "file.unparseable", path,
            f"not read: {size} bytes is over the {self.max_file_bytes}-byte limit for one certificate or key file",
            confirm=f"ls -l {quoted}; file {quoted}",
            fix="if it really is certificate material, raise discovery's file size limit; otherwise leave it out "
                "of the paths walked",
        ))

    def check_exposure(self) -> None:
        """Private key material that group or other can read (``mode & 0o077``), once per inode."""
        reported: set[tuple[int, int]] = set()
        for path in sorted(self.seen):
            seen = self.seen[path]
            if not seen.parsed.holds_private_key or not seen.mode & 0o077 or seen.inode in reported:
                continue
            reported.add(seen.inode)
            who = []
            if seen.mode & 0o070:
                who.append(f"group {_group(seen.gid)}")
            if seen.mode & 0o007:
                who.append("every other user")
            locked = "" if seen.parsed.keys else " (encrypted, but its password usually sits in a config nearby)"
            quoted = shlex.quote(path)
            self.problem(file_problem(
                "file.key_exposed", path,
                f"holds a private key{locked} and its mode is {seen.mode:04o}: {' and '.join(who)} can "
                f"{'read or change' if seen.mode & 0o022 else 'read'} it",
                confirm=f"stat -c '%a %U:%G' {quoted}",
                fix=f"`chmod 600 {quoted}` (and `chown` it to the user the service runs as)",
            ))

    def check_pairs(self) -> None:
        """A key whose obvious partner certificate (same file, or named like it in the same directory) carries
        another public key: the service will refuse to start, or the next deploy will break it."""
        for path in sorted(self.seen):
            parsed = self.seen[path].parsed
            for key in parsed.keys:
                partners: list[ParsedFile] = []
                if parsed.certificates:
                    partners.append(parsed)
                partners += [self.seen[p].parsed for p in obvious_partners(path)
                             if p in self.seen and self.seen[p].parsed.certificates and p != path]
                for partner in partners:
                    if any(c.facts.spki_sha256 == key.spki_sha256 for c in partner.certificates):
                        continue
                    self.problem(_mismatch(key, partner))


def _mismatch(key: FoundKey, partner: ParsedFile) -> FileProblem:
    leaf = partner.certificates[0]
    same = partner.path == key.path
    where = "in the same file" if same else f"in {partner.path}"
    count = len(partner.certificates)
    subject = leaf.facts.subject or "an empty subject"
    certificates = "the certificate" if count == 1 else f"any of the {count} certificates (first: {subject})"
    if count == 1:
        certificates += f" ({subject}, expires {leaf.facts.not_after:%Y-%m-%d})"
    what = (f"the {key.key_type} {key.key_bits} private key does not match {certificates} {where}: their public "
            f"keys differ (key {key.spki_sha256[:16]}…, certificate {leaf.facts.spki_sha256[:16]}…)")
    return file_problem("file.key_mismatch", key.path, what, confirm=_compare_command(key, leaf),
                        fix=f"install the key that belongs to {partner.path} (or reissue the certificate for this "
                            "key) and reload the service")


def _compare_command(key: FoundKey, certificate: FoundCertificate) -> str:
    """One line that shows the two public keys differ, for the formats openssl reads directly."""
    if key.format in ("pem", "der") and certificate.format in ("pem", "der"):
        key_form = " -inform DER" if key.format == "der" else ""
        cert_form = " -inform DER" if certificate.format == "der" else ""
        return (f"diff <(openssl pkey{key_form} -in {shlex.quote(key.path)} -pubout) "
                f"<(openssl x509{cert_form} -in {shlex.quote(certificate.path)} -noout -pubkey)")
    if key.format == "pkcs12":
        return f"openssl pkcs12 -in {shlex.quote(key.path)} -nodes | openssl pkey -pubout"
    return f"keytool -list -v -keystore {shlex.quote(key.path)}"


def _moved(parsed: ParsedFile, path: str, mode: int) -> ParsedFile:
    """A parse of the same inode under another name (a symlink, a hard link): the same findings, re-labelled."""
    return ParsedFile(
        path, parsed.format,
        tuple(dataclasses.replace(c, path=path) for c in parsed.certificates),
        tuple(dataclasses.replace(k, path=path, mode=mode) for k in parsed.keys),
        (), parsed.holds_private_key,
    )


def _read_rest(descriptor: int, head: bytes, size: int, limit: int) -> bytes | None:
    """The file's bytes after ``head``; None when it grew past ``limit`` while we read it."""
    chunks = [head] if head else []
    total = len(head)
    want = max(size - total, 0) + 1
    while True:
        chunk = os.read(descriptor, want)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            return None
        if len(chunk) < want:
            break   # a short read of a regular file is its end: saves the read that would return nothing
        want = 65536
    return b"".join(chunks) if len(chunks) != 1 else chunks[0]


def _extension(name: str) -> str:
    """``.pem`` for ``site.PEM``; "" for ``README`` and dot files (``.bashrc``). Plain string work: it runs once
    per directory entry of the whole walk."""
    base = name.rpartition("/")[2]
    stem, dot, extension = base.rpartition(".")
    return "." + extension.lower() if dot and stem else ""


def _is_text(data: bytes) -> bool:
    """UTF-8 text without NULs, judged on the first KB (a character may be cut at its end)."""
    sample = data[:1024]
    if b"\x00" in sample:
        return False
    for cut in range(4):
        try:
            sample[:len(sample) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return True
    return False


def _readlink(path: str) -> str:
    try:
        return str(Path(path).readlink())
    except OSError:
        return "an unknown target"


def _owner(path: str) -> str:
    try:
        info = Path(path).stat()
    except OSError:
        return ""
    return f" (owner uid {info.st_uid}, group {_group(info.st_gid)}, mode {stat.S_IMODE(info.st_mode):04o})"


_GROUPS: dict[int, str] = {}


def _group(gid: int) -> str:
    if gid not in _GROUPS:
        try:
            _GROUPS[gid] = grp.getgrgid(gid).gr_name
        except KeyError:
            _GROUPS[gid] = str(gid)
    return _GROUPS[gid]
