"""`flask --app wsgi backup` and `flask --app wsgi restore`: the operator's side of collab.backup/collab.restore.

Progress goes to standard error line by line (cron mails standard output only when something is printed there at
the end); the last line on standard output names the archive, so scripts can pick it up.
"""
from __future__ import annotations

import sys

import click
from flask import current_app

from auth import mfa
from collab.backup import BackupError, create_backup
from collab.schema import upgrade_database
from collab.restore import restore_backup
from search import documents
from search.indexer import rebuild


def _progress(message: str) -> None:
    click.echo(message, file=sys.stderr)


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"


@click.command("backup")
@click.option("--to", "to", default=None, help="Folder for the archive (default: <data dir>/backups).")
@click.option("--include-secrets", is_flag=True,
              help="Also archive the secret key (needed for two-step verification after a restore elsewhere).")
@click.option("--key-file", default=None, help="Encrypt the archive with a key from this file (32+ random bytes).")
def backup_command(to: str | None, include_secrets: bool, key_file: str | None) -> None:
    """Write one consistent, timestamped archive of the database and the data folder's files."""
    try:
        result = create_backup(current_app.config, to, include_secrets=include_secrets, key_file=key_file,
                               progress=_progress)
    except BackupError as err:
        raise click.ClickException(str(err)) from None
    if result.missing:
        _progress(f"Note: {len(result.missing)} files were removed while the backup ran and are not in it.")
    click.echo(f"Backup written: {result.path} ({_size(result.bytes)}, {result.files} files, "
               f"{result.seconds:.1f} s).")


@click.command("restore")
@click.argument("archive")
@click.option("--key-file", default=None, help="The key file an encrypted archive was made with.")
@click.option("--procs", type=int, default=2, show_default=True, help="Processes for rebuilding the search index.")
def restore_command(archive: str, key_file: str | None, procs: int) -> None:
    """Restore ARCHIVE into an empty data folder and database, then rebuild the search index."""
    app = current_app._get_current_object()
    try:
        manifest = restore_backup(app.config, archive, key_file=key_file, progress=_progress)
    except BackupError as err:
        raise click.ClickException(str(err)) from None
    _progress(f"Schema: upgrading from {manifest['schema_revision']} to this version …")
    upgrade_database(app.config["DATABASE_URL"])
    total = documents.count_indexable()
    _progress(f"Search: rebuilding the index of {total} posts …")
    n = rebuild(app, procs=procs, progress=lambda k: None)
    _progress(f"Search: {n} posts indexed.")
    if not manifest.get("includes_secret_key") and mfa.secrets_readable() is False:
        _progress("Warning: this archive has no secret key and this server's key does not open the two-step "
                  "verification secrets: set COLLAB_SECRET_KEY to the old server's key, or enrolled people must "
                  "set up two-step verification again (an administrator resets it).")
    click.echo(f"Restored {archive} (made {manifest['created_at']}, {manifest['files']} files).")
