"""What both sides of the wire share: paygate-hmac-v1 signing, the simulated clock and its
anchor, id formats and the SPEC 11 error types. Imports nothing of the gateway."""
