"""The other station (issue 12 item 8): stations taking part in another
station's case (notice's station, destination station) and 转送 between stations."""
