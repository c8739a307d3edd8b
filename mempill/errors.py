"""The one error hierarchy of reference §7."""

from __future__ import annotations


class MempillError(Exception):
    """Base of every error mempill raises."""


class ValidationError(MempillError, ValueError):
    """A request that does not parse into the typed request; nothing was written."""


class NotFoundError(MempillError, LookupError):
    """An unknown claim, agent or adjudication handle (or one already resolved/expired)."""


class ConflictError(MempillError):
    """A bound conflicts with an active one, or writer contention outlived its retries."""


class ConfigError(MempillError, ValueError):
    """An invalid configuration value."""


class StorageError(MempillError):
    """The persistence layer failed; the cause is chained."""


class TransientStorageError(StorageError):
    """A storage failure that is safe to retry (lost connection, lock timeout, …)."""


class IntegrityError(StorageError):
    """A constraint of the store was violated."""


class PermissionDeniedError(StorageError):
    """The database role may not reach this agent or table (PostgreSQL row-level
    security and grants); nothing was read or written."""
