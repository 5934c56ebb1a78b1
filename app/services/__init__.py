"""Business rules, independent of HTTP. Functions take a Session; the caller owns the transaction."""
