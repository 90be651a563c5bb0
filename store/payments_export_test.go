package store

// The queries of PaymentOf and PaymentTransactions, for their EXPLAIN test.
const (
	PaymentOfQuery           = paymentOfQuery
	PaymentTransactionsQuery = paymentTransactionsQuery
)
