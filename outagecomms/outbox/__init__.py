"""The transactional outbox: sending what it owes (``dispatch``), sharing large fan-outs with
sender processes (``senders``), retrying failed deliveries (``redelivery``), listing them."""
