"""The family-search announcement (寻亲公告): what a station publishes about a person."""
