package store

// The queries of ApplyBankReport's order look-up and PaymentTransactions, for their EXPLAIN test.
const (
	PaymentOrderQuery        = paymentOrderQuery
	PaymentTransactionsQuery = paymentTransactionsQuery
)
