"""Stage 1, request → events: body decoding, authentication, the three body shapes, the Spec."""
