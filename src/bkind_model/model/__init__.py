"""The network: encoder, keypoint head, decoder, and the keypoint geometry they share."""
