"""Online search requests (网上寻亲登记): families ask for a search from their phones;
staff of the responsible station moderate; an accepted request becomes a notice."""
