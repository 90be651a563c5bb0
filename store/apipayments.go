package store

import (
	"context"
	"fmt"

	"github.com/lib/pq"
)

// PaymentTransactionsOf returns the transactions of the payment orders among numbers,
// in file order, keyed by message number, for the API's view of a page of messages; a
// number that is no payment order has no entry. One query for the whole page, on the
// primary key of payment_transactions (message_number, end_to_end_id).
//
// The bank's statuses are shown as the environment's replies are (rule 13): a status
// recorded after the order's last process, while the order waits to be processed, is
// left out (status, reason and its text are ""), so the transactions never tell the
// environment more than the order's own status does. The row keeps only the latest
// status, so until that process the transaction shows none rather than an earlier one.
func (s *Store) PaymentTransactionsOf(ctx context.Context, numbers []int64) (map[int64][]PaymentTxView, error) {
	out := make(map[int64][]PaymentTxView)
	if len(numbers) == 0 {
		return out, nil
	}
	var rows []struct {
		Number int64 `db:"message_number"`
		PaymentTxView
	}
	if err := s.db.SelectContext(ctx, &rows, paymentTransactionsOfQuery, pq.Array(numbers)); err != nil {
		return nil, fmt.Errorf("read the transactions of %d payment order(s): %w", len(numbers), err)
	}
	for _, r := range rows {
		out[r.Number] = append(out[r.Number], r.PaymentTxView)
	}
	return out, nil
}

const paymentTransactionsOfQuery = `
	SELECT t.message_number, t.end_to_end_id, t.amount::text AS amount, t.currency, t.creditor_name, t.creditor_iban,
		CASE WHEN v.seen THEN t.status ELSE '' END AS status,
		CASE WHEN v.seen THEN t.reason_code ELSE '' END AS reason_code,
		CASE WHEN v.seen THEN t.reason_text ELSE '' END AS reason_text
	FROM payment_transactions t JOIN messages m ON m.number = t.message_number,
		LATERAL (SELECT coalesce(t.updated_at <= m.processed_at, false) OR m.status = m.env_status AS seen) v
	WHERE t.message_number = ANY($1)
	ORDER BY t.message_number, t.position`
