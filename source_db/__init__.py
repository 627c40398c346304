"""The simulated B2B platform database: DDL per dialect plus connect/create helpers."""

from source_db.database import (
    PLATFORM_TABLES,
    SourceDatabase,
    SourceDatabaseError,
)

__all__ = ["PLATFORM_TABLES", "SourceDatabase", "SourceDatabaseError"]
