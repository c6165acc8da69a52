//! Sign-in state kept in the replicated database: admin sessions, and the settings row that holds
//! the random cookie-signing key (so every node of a cluster signs alike with nothing to configure).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .if_not_exists()
                    .col(string(Sessions::Id).primary_key())
                    .col(text(Sessions::Data))
                    .col(big_integer(Sessions::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_sessions_expires_at")
                    .table(Sessions::Table)
                    .col(Sessions::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Settings::Table)
                    .if_not_exists()
                    .col(string(Settings::Name).primary_key())
                    .col(text(Settings::Value))
                    .to_owned(),
            )
            .await?;
        // 64 bytes from SQLite's CSPRNG (seeded by the OS), written once: a key that is never
        // derived from anything a visitor could guess.
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT OR IGNORE INTO settings (name, value) \
                 VALUES ('cookie_key', lower(hex(randomblob(64))))",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Settings::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Sessions::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    Data,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Settings {
    Table,
    Name,
    Value,
}
