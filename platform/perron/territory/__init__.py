"""Territory, a shared service: the commune's streets (with postcodes), neighbourhoods and
named zones, edited by staff and versioned, with "which neighbourhood or zone is this
address or point in?" as one call (:mod:`perron.territory.service`)."""
