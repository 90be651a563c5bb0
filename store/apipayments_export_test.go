package store

// The query of PaymentTransactionsOf, for its EXPLAIN test.
const PaymentTransactionsOfQuery = paymentTransactionsOfQuery
