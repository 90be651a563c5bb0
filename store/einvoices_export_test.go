package store

// IncomingInvoicesQuery is the page query of IncomingInvoices, for its EXPLAIN test.
const IncomingInvoicesQuery = incomingInvoicesQuery
