"""External systems payment talks to: the payment gateway (支付渠道)."""
