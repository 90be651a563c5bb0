-- +goose Up
-- E-invoices (UBL) sent and received by e-mail through each environment's own mailbox
-- (rule 2 in docs/rules.md, issue 13). Forward-only; every statement is guarded so that
-- re-running the file by hand changes nothing.

-- The way a message travels. Every message before this migration went through
-- Digipoort, which the default says; an e-invoice goes by e-mail to its recipient.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS channel text NOT NULL DEFAULT 'digipoort'
    CHECK (channel IN ('digipoort', 'email'));
-- The address an outgoing e-invoice goes to, decided when it is queued (the invoice's
-- customer address or one the environment gave), so that a resend goes to the same one.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS recipient text CHECK (char_length(recipient) <= 254);

-- An environment's e-mail profile: the sender address, the SMTP server it submits by
-- and, when it receives invoices, the IMAP mailbox it reads. Passwords are sealed with
-- KOERIER_SECRET_KEY (package internal/secrets) before they get here; NULL is none. A
-- copy of the database alone does not open the mailboxes.
--
-- The older environments.email_from and smtp_address columns (00001) stay, as this
-- file is forward-only, but nothing reads them any more: a profile lives here. A row
-- that has them set gets no profile invented from them (they never held a port,
-- security or password); an operator sets a full profile (`starter environments set`).
CREATE TABLE IF NOT EXISTS environment_mail_profiles (
    environment_id   bigint PRIMARY KEY REFERENCES environments (id),
    email_from       text NOT NULL CHECK (email_from <> '' AND char_length(email_from) <= 254),
    smtp_host        text NOT NULL CHECK (smtp_host <> '' AND char_length(smtp_host) <= 253),
    smtp_port        integer NOT NULL CHECK (smtp_port BETWEEN 1 AND 65535),
    -- tls: implicit TLS (465); starttls: upgraded plain connection (587); none: only
    -- for a server on the same machine (store.SetMailProfile checks the host).
    smtp_security    text NOT NULL CHECK (smtp_security IN ('tls', 'starttls', 'none')),
    smtp_user        text NOT NULL DEFAULT '',
    smtp_password    bytea,
    -- '' means the environment sends but has no mailbox to read.
    imap_host        text NOT NULL DEFAULT '' CHECK (char_length(imap_host) <= 253),
    imap_port        integer NOT NULL DEFAULT 0 CHECK (imap_port BETWEEN 0 AND 65535),
    imap_security    text NOT NULL DEFAULT '' CHECK (imap_security IN ('', 'tls', 'starttls', 'none')),
    imap_user        text NOT NULL DEFAULT '',
    imap_password    bytea,
    folder           text NOT NULL DEFAULT 'INBOX' CHECK (folder <> ''),
    processed_folder text NOT NULL DEFAULT 'Koerier/Verwerkt' CHECK (processed_folder <> ''),
    sent_folder      text NOT NULL DEFAULT 'Sent' CHECK (sent_folder <> ''),
    -- A profile on the local development mail server (`--local-mail`).
    local            boolean NOT NULL DEFAULT false,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    -- A mailbox is all or nothing.
    CHECK ((imap_host = '') = (imap_port = 0) AND (imap_host = '') = (imap_security = ''))
);

-- What an incoming e-invoice says, beside the message that holds the document: the
-- environment's list of received invoices reads it, and a second copy of an invoice
-- (same supplier and number, often the supplier sending it again) is recognised by
-- the UNIQUE below and not stored twice. Clean-up removes it with its message.
CREATE TABLE IF NOT EXISTS incoming_invoices (
    message_number  bigint PRIMARY KEY REFERENCES messages (number) ON DELETE CASCADE,
    environment_id  bigint NOT NULL REFERENCES environments (id),
    kind            text NOT NULL CHECK (kind <> ''),
    supplier_key    text NOT NULL CHECK (supplier_key <> ''),
    supplier_name   text NOT NULL,
    invoice_number  text NOT NULL CHECK (invoice_number <> ''),
    issue_date      date NOT NULL,
    currency        text NOT NULL,
    -- NULL when the invoice has no readable amount: it is kept all the same.
    payable         numeric(20, 2),
    mail_message_id text NOT NULL DEFAULT '',
    received_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (environment_id, supplier_key, invoice_number)
);
-- An environment's received invoices, page by page (store.IncomingInvoices).
CREATE INDEX IF NOT EXISTS incoming_invoices_environment ON incoming_invoices (environment_id, message_number);

-- Send/receive asks Digipoort about the messages in flight; an e-invoice is never at
-- Digipoort, and one that was sent may stay "sent" for good (an e-mail has no receipt),
-- so the index that lists those (00001) leaves e-mail out rather than walk past every
-- e-invoice ever sent. Recreated only while its definition does not name the channel.
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = 'messages_in_flight' AND indexdef LIKE '%channel%') THEN
        DROP INDEX IF EXISTS messages_in_flight;
        CREATE INDEX messages_in_flight ON messages (number)
            WHERE direction = 'out' AND channel = 'digipoort' AND status IN ('sent', 'receipt_confirmed', 'in_progress');
    END IF;
END
$$;
-- +goose StatementEnd
