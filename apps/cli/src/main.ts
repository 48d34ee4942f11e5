console.log("cowork: not yet")
